//! `trldm data ...` end to end through the real binary, on the real puzzles
//! of ../shared/data and on generated ones.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trldm"))
}

fn shared() -> PathBuf {
    std::env::var("TRLDM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run trldm")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_passes_on_every_shared_sudoku_file() {
    let dir = shared().join("data/sudoku");
    let mut files = 0;
    for e in std::fs::read_dir(&dir).expect("../shared/data/sudoku") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "csv") {
            let o = run(&["data", "check", p.to_str().unwrap()]);
            let t = text(&o);
            assert!(o.status.success(), "{}: {t}", p.display());
            assert!(t.contains(", 0 with problems"), "{t}");
            files += 1;
        }
    }
    assert_eq!(files, 4);
}

#[test]
fn generate_check_stats_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s.csv");
    let m = tmp.path().join("m.csv");
    let o = run(&[
        "data",
        "gen",
        "sudoku",
        "--count",
        "50",
        "--clues",
        "28",
        "--out",
        s.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[
        "data",
        "gen",
        "maze",
        "--size",
        "9",
        "--min-path-len",
        "8",
        "--count",
        "50",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [&s, &m] {
        let o = run(&["data", "check", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("50 rows"), "{}", text(&o));
        let o = run(&["data", "stats", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(text(&run(&["data", "stats", m.to_str().unwrap()]))
        .to_lowercase()
        .contains("path"));
}

#[test]
fn convert_solves_a_plain_list() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("p.txt");
    // Two puzzles from magictour_top1465 (answers are solved on load).
    std::fs::write(
        &plain,
        "# two hard ones\n4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........\n\n7.8...3.....2.1...5.........4.....263...8.......1...9..9.6....4....7.5...........\n",
    )
    .unwrap();
    let out = tmp.path().join("p.csv");
    let o = run(&[
        "data",
        "convert",
        plain.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(
        csv.contains(
            "468931527751624839392578461134756298289413675675289314846192753513867942927345186"
        ),
        "{csv}"
    );
    let o = run(&["data", "check", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_files_name_file_line_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let good = "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........";
    let ans = "468931527751624839392578461134756298289413675675289314846192753513867942927345186";
    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "source,question,answer,rating\nx,{good},{ans},0\nx,{},{ans},0\nx,{good},{},0\n",
            &good[1..],
            ans.replace("468", "648")
        ),
    )
    .unwrap();
    let o = run(&["data", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("3 rows") && t.contains("1 ok") && t.contains("2 with problems"),
        "{t}"
    );
    assert!(t.contains("bad.csv:3: wrong length"), "{t}");
    assert!(t.contains("bad.csv:4:"), "{t}");
    // stats without --skip-invalid stops at the first bad row; with it, continues.
    let o = run(&["data", "stats", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("bad.csv:3"), "{}", text(&o));
    let o = run(&["data", "stats", "--skip-invalid", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("skipped 2 invalid rows"), "{}", text(&o));
    // An empty file and a missing column.
    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let t = text(&run(&["data", "check", empty.to_str().unwrap()]));
    assert!(t.contains("empty.csv") && t.contains("empty file"), "{t}");
    let nocol = tmp.path().join("nocol.csv");
    std::fs::write(&nocol, "source,puzzle\nx,123\n").unwrap();
    let t = text(&run(&[
        "data",
        "check",
        nocol.to_str().unwrap(),
        "--task",
        "sudoku",
    ]));
    assert!(t.contains("nocol.csv:1: missing column `question`"), "{t}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["data", "gen", "sudoku"],
        vec!["data", "gen", "maze"],
        vec!["data", "check"],
        vec!["data", "stats"],
        vec!["data", "convert"],
        vec!["train"],
        vec!["eval"],
        vec!["solve"],
        vec!["bench", "train"],
        vec!["doctor"],
    ] {
        let mut a = args.clone();
        a.push("--help");
        let o = run(&a);
        assert!(o.status.success(), "{args:?}");
        assert!(text(&o).contains("Example:"), "{args:?}: {}", text(&o));
    }
}

/// Impossible maze requests end with an error that names what to relax,
/// both in `data gen` and in a run config (no endless loop, no panic).
#[test]
fn impossible_maze_requests_are_refused_not_looped_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.csv");
    for extra in [
        ["--min-path-len", "24", "--wall-min", "0", "--wall-max", "0"],
        [
            "--min-path-len",
            "20",
            "--wall-min",
            "0.3",
            "--wall-max",
            "0.3",
        ],
    ] {
        let mut args = vec![
            "data",
            "gen",
            "maze",
            "--size",
            "5",
            "--count",
            "3",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(&extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o));
        assert!(
            text(&o).contains("lower min_path_len"),
            "{extra:?}: {}",
            text(&o)
        );
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let o = run(&[
        "train",
        "--run-dir",
        tmp.path().join("r").to_str().unwrap(),
        "--set",
        "task.height=5",
        "--set",
        "task.width=5",
        "--set",
        "task.min_path_len=1000",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("task (height, width, wall_min, wall_max, min_path_len): min_path_len 1000 is impossible in a 5x5 maze"), "{}", text(&o));
}

/// A write that fails for lack of space (here a file-size limit, EFBIG, the
/// same path as ENOSPC) ends with an error naming the file, leaves the old
/// file as it was and no temp file behind.
#[test]
fn a_failed_write_keeps_the_old_file_and_leaves_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mazes.csv");
    std::fs::write(&out, "old contents\n").unwrap();
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 4; exec '{}' data gen maze --size 9 --min-path-len 8 --count 2000 --out '{}'",
            env!("CARGO_BIN_EXE_trldm"),
            out.display()
        ))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("mazes.csv: cannot write"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old contents\n");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["mazes.csv"], "{left:?}");
}
