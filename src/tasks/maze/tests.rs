use super::*;
use crate::tasks::csvio::{self};
use crate::tasks::{LoadOptions, Pair, ProblemKind, Score};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// Parses a grid written as rows (all of equal width).
fn grid(rows: &[&str]) -> (Vec<u8>, usize, usize) {
    let (h, w) = (rows.len(), rows[0].len());
    (
        parse_grid(&rows.concat(), h, w, true).expect("test grid"),
        h,
        w,
    )
}

/// A 5x5 maze with a unique shortest path of 7 moves and a longer detour.
const Q: [&str; 5] = ["S   #", "# # #", "#   #", "# ###", "#  G "];
const A: [&str; 5] = ["So  #", "#o# #", "#o  #", "#o###", "#ooG "];
/// `A` with the wall at row 0, column 4 erased.
const A_NO_WALL: [&str; 5] = ["So   ", "#o# #", "#o  #", "#o###", "#ooG "];

fn label() -> (Vec<u8>, Vec<u8>, usize, usize) {
    let (q, h, w) = grid(&["S    ", "# ## ", "#    ", "# ## ", "#   G"]);
    let (a, _, _) = grid(&["Soooo", "# ##o", "#   o", "# ##o", "#   G"]);
    (q, a, h, w)
}

fn scored(pred: &[&str]) -> Score {
    let (q, a, h, w) = label();
    score(&q, &grid(pred).0, &a, h, w)
}

#[test]
fn parse_format_round_trip_and_errors() {
    let (q, h, w) = grid(&Q);
    assert_eq!((h, w), (5, 5));
    assert_eq!(format_grid(&q), Q.concat());
    assert_eq!(infer_square(900), Some(30));
    assert_eq!(infer_square(81), Some(9));
    assert_eq!(infer_square(899), None);
    assert_eq!(infer_square(0), None);
    let e = parse_grid("S G", 2, 2, false).unwrap_err();
    assert_eq!(e.kind, ProblemKind::WrongLength);
    let e = parse_grid("S.G#", 2, 2, false).unwrap_err();
    assert_eq!(e.kind, ProblemKind::UnknownChar);
    assert!(
        e.detail.contains("'.'") && e.detail.contains("row 0, column 1"),
        "{e}"
    );
    let e = parse_grid("SoG#", 2, 2, false).unwrap_err();
    assert_eq!(e.kind, ProblemKind::UnknownChar);
    assert!(parse_grid("SoG#", 2, 2, true).is_ok());
    let p = pretty(&q, w);
    assert_eq!(p.lines().count(), 7);
    assert!(p.contains("|S   #|"));
}

#[test]
fn bfs_shortest_path_and_count() {
    let (q, a, h, w) = label();
    let path = shortest_path(&q, h, w).expect("path");
    assert_eq!(path.len() - 1, 8);
    assert_eq!(shortest_len(&q, h, w), Some(8));
    // Two corridors (top-right, bottom-left) and the middle row mixes them.
    assert_eq!(count_shortest_paths(&q, h, w), 3);
    let mut b = q.clone();
    for &c in &path[1..path.len() - 1] {
        b[c] = PATH;
    }
    assert!(check_pair(&q, &b, h, w, true).is_ok());
    assert!(check_pair(&q, &a, h, w, true).is_ok());
    let (blocked, h2, w2) = grid(&["S#", "#G"]);
    assert_eq!(shortest_path(&blocked, h2, w2), None);
    assert_eq!(count_shortest_paths(&blocked, h2, w2), 0);
    // Saturation: corner to corner of an open 70x70 grid has C(138, 69) > 2^128 paths.
    let mut open = vec![OPEN; 70 * 70];
    open[0] = START;
    open[70 * 70 - 1] = GOAL;
    assert_eq!(count_shortest_paths(&open, 70, 70), u128::MAX);
    open[69] = GOAL;
    open[70 * 70 - 1] = OPEN;
    assert_eq!(count_shortest_paths(&open, 70, 70), 1);
}

#[test]
fn generated_mazes_are_checked_shortest_and_deterministic() {
    for (name, count) in [
        ("9x9", 300),
        ("9x9-ref", 100),
        ("20x20", 100),
        ("30x30-hard", 40),
    ] {
        let o = GenOptions::preset(name).expect("preset");
        let mazes = generate_many(&o, count, 11).unwrap();
        assert_eq!(
            mazes,
            generate_many(&o, count, 11).unwrap(),
            "{name} not deterministic"
        );
        assert_ne!(
            mazes,
            generate_many(&o, count, 12).unwrap(),
            "{name} ignores the seed"
        );
        for m in &mazes {
            check_pair(&m.question, &m.answer, o.h, o.w, true).expect("generated maze checks");
            let len = shortest_len(&m.question, o.h, o.w).expect("has a path");
            assert!(len >= o.min_path_len, "{name}: {len} < {}", o.min_path_len);
            let s = score(&m.question, &m.answer, &m.answer, o.h, o.w);
            assert_eq!(s.optimal, Some(true));
        }
    }
    let o = GenOptions::preset("30x30-hard").expect("preset");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (pair, info) = generate(&o, &mut rng).unwrap();
    assert!(info.path_len > 110);
    assert_eq!(Some(info.path_len), shortest_len(&pair.question, 30, 30));
    assert_eq!(
        info.n_shortest,
        count_shortest_paths(&pair.question, 30, 30)
    );
    assert_eq!(
        info.walls,
        pair.question.iter().filter(|&&c| c == WALL).count()
    );
    assert_eq!(
        pair.answer.iter().filter(|&&c| c == PATH).count() + 1,
        info.path_len
    );
}

#[test]
fn generator_options_are_validated() {
    assert!(GenOptions::preset("nope").is_none());
    for name in GenOptions::PRESETS {
        GenOptions::preset(name)
            .expect("preset")
            .validate()
            .expect("valid preset");
    }
    let bad = GenOptions {
        min_path_len: 81,
        ..GenOptions::searchformer(9, 9)
    };
    assert!(bad.validate().is_err());
    let bad = GenOptions {
        wall_min: 0.6,
        wall_max: 0.5,
        ..GenOptions::searchformer(9, 9)
    };
    assert!(bad.validate().is_err());
    let bad = GenOptions {
        wall_max: 1.0,
        ..GenOptions::searchformer(9, 9)
    };
    assert!(bad.validate().is_err());
    // Non-square mazes generate too.
    let o = GenOptions::searchformer(6, 11);
    for m in generate_many(&o, 50, 3).unwrap() {
        check_pair(&m.question, &m.answer, 6, 11, true).expect("6x11 maze checks");
    }
}

#[test]
fn dihedral_transforms() {
    let (q, h, w) = grid(&Q);
    let (a, _, _) = grid(&A);
    let images: HashSet<Vec<u8>> = (0..8).map(|k| transform(&q, h, w, k).0).collect();
    assert_eq!(
        images.len(),
        8,
        "the 8 symmetries must differ on an asymmetric grid"
    );
    for k in 0..8 {
        let (t, th, tw) = transform(&q, h, w, k);
        let (ta, _, _) = transform(&a, h, w, k);
        assert_eq!(transform(&t, th, tw, inverse(k)).0, q, "inverse of {k}");
        check_pair(&t, &ta, th, tw, true).expect("transformed pair stays valid");
        assert_eq!(shortest_len(&t, th, tw), shortest_len(&q, h, w));
        assert_eq!(
            count_shortest_paths(&t, th, tw),
            count_shortest_paths(&q, h, w)
        );
    }
    // Quarter turns compose: 1 twice = 2, four times = identity.
    let r1 = transform(&q, h, w, 1).0;
    assert_eq!(transform(&r1, h, w, 1).0, transform(&q, h, w, 2).0);
    let mut g = q.clone();
    for _ in 0..4 {
        g = transform(&g, h, w, 1).0;
    }
    assert_eq!(g, q);
    // Mirror twice = identity; a mirror after a turn is another mirror.
    let m = transform(&q, h, w, 4).0;
    assert_eq!(transform(&m, h, w, 4).0, q);
    assert_eq!(transform(&r1, h, w, 4).0, transform(&q, h, w, 5).0);
}

#[test]
fn non_square_transforms_and_augment() {
    let (q, h, w) = grid(&["S  #", "## G", "    "]);
    let (t, th, tw) = transform(&q, h, w, 1);
    assert_eq!((th, tw), (4, 3));
    assert_eq!(transform(&t, th, tw, 3).0, q);
    assert_eq!(transform(&q, h, w, 5).1, 4);
    let pair = Pair {
        question: q.clone(),
        answer: q.clone(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let p = augment(&pair, h, w, &mut rng);
        assert_eq!(p.question, p.answer);
        assert_eq!(shortest_len(&p.question, h, w), shortest_len(&q, h, w));
        seen.insert(p.question);
    }
    assert_eq!(
        seen.len(),
        4,
        "non-square: the 4 shape-preserving transforms"
    );
    let o = GenOptions::preset("9x9").expect("preset");
    let m = &generate_many(&o, 1, 1).unwrap()[0];
    let seen: HashSet<_> = (0..400)
        .map(|_| augment(m, 9, 9, &mut rng))
        .map(|p| p.question)
        .collect();
    assert_eq!(seen.len(), 8);
}

#[test]
fn metric_label_is_exact_valid_optimal() {
    let s = scored(&["Soooo", "# ##o", "#   o", "# ##o", "#   G"]);
    assert_eq!(
        s,
        Score {
            exact: true,
            valid: true,
            optimal: Some(true),
            len_ratio: Some(1.0)
        }
    );
    // Another shortest path: not exact but valid and optimal.
    let s = scored(&["So   ", "#o## ", "#o   ", "#o## ", "#oooG"]);
    assert_eq!(
        s,
        Score {
            exact: false,
            valid: true,
            optimal: Some(true),
            len_ratio: Some(1.0)
        }
    );
}

/// A valid 14-move path in the `label()` maze (shortest: 8).
const LONGER: [&str; 5] = ["Soooo", "# ##o", "#oooo", "#o## ", "#oooG"];

#[test]
fn metric_longer_path_is_valid_not_optimal() {
    let s = scored(&LONGER);
    assert!(s.valid && !s.exact);
    assert_eq!(s.optimal, Some(false));
    assert!(s.len_ratio.expect("ratio") > 1.0, "{s:?}");
    assert_eq!(s.len_ratio, Some(14.0 / 8.0));
}

#[test]
fn metric_invalid_predictions() {
    let invalid = |name: &str, pred: &[&str]| {
        let s = scored(pred);
        assert!(!s.valid && !s.exact, "{name}: {s:?}");
        assert_eq!(s.optimal, Some(false), "{name}");
        assert_eq!(s.len_ratio, Some(0.0), "{name}");
    };
    invalid("gap", &["Soo o", "# ##o", "#   o", "# ##o", "#   G"]);
    invalid(
        "through a wall",
        &["Soo  ", "# o# ", "# ooo", "# ##o", "#   G"],
    );
    invalid(
        "overwritten wall",
        &["Soooo", "  ##o", "#   o", "# ##o", "#   G"],
    );
    invalid(
        "overwritten start",
        &["ooooo", "# ##o", "#   o", "# ##o", "#   G"],
    );
    invalid(
        "extra disconnected cell",
        &["Soooo", "# ##o", "#   o", "# ##o", "#o  G"],
    );
    invalid(
        "branch (degree 3)",
        &["Soooo", "# ##o", "#  oo", "# ##o", "#   G"],
    );
    invalid(
        "empty prediction",
        &["S    ", "# ## ", "#    ", "# ## ", "#   G"],
    );
    let (q, h, w) = grid(&["S   G", "     ", "     ", "     ", "     "]);
    let (cycle, _, _) = grid(&["SoooG", "     ", "     ", " oo  ", " oo  "]);
    assert!(!score(&q, &cycle, &cycle, h, w).valid, "separate loop");
    let (ok, _, _) = grid(&["SoooG", "     ", "     ", "     ", "     "]);
    assert!(score(&q, &ok, &cycle, h, w).optimal == Some(true));
    let (q, a, h, w) = label();
    assert!(!score(&q, &[], &a, h, w).valid);
    assert!(!score(&q, &vec![9; h * w], &a, h, w).valid);
    let mut extra_goal = a.clone();
    extra_goal[4] = GOAL;
    assert!(!score(&q, &extra_goal, &a, h, w).valid);
}

#[test]
fn check_pair_kinds() {
    use ProblemKind::*;
    let (q, a, h, w) = label();
    let kind = |q: &[u8], a: &[u8], verify| check_pair(q, a, h, w, verify).unwrap_err().kind;
    let (longer, _, _) = grid(&LONGER);
    assert_eq!(check_pair(&q, &longer, h, w, false), Ok(()));
    assert_eq!(kind(&q, &longer, true), NotShortest);
    let mut no_goal = q.clone();
    no_goal[24] = OPEN;
    assert_eq!(kind(&no_goal, &no_goal, false), BadEndpoints);
    let mut two_starts = q.clone();
    two_starts[1] = START;
    assert_eq!(kind(&two_starts, &two_starts, false), BadEndpoints);
    let mut wall_gone = a.clone();
    wall_gone[5] = OPEN;
    assert_eq!(kind(&q, &wall_gone, false), ContradictsGivens);
    assert_eq!(kind(&q, &q, false), InvalidAnswer);
    assert_eq!(kind(&q, &a[1..], false), WrongLength);
    let (walled, _, _) = grid(&["S  # ", "#  # ", "#  # ", "####G", "#   #"]);
    assert_eq!(kind(&walled, &walled, true), NoPath);
    assert_eq!(kind(&walled, &walled, false), InvalidAnswer);
}

const HDR: &str = "source,question,answer,rating\n";

fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mazes.csv");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

fn row(q: &[&str], a: &[&str]) -> String {
    format!("t,{},{},0\n", q.concat(), a.concat())
}

fn load_err(text: &str, verify: bool) -> String {
    let (_dir, path) = write(text);
    let opts = LoadOptions {
        skip_invalid: false,
        verify,
    };
    format!("{:#}", load_csv(&path, None, opts).unwrap_err())
}

#[test]
fn bad_files_name_file_and_line() {
    let good = row(&Q, &A);
    let cases: Vec<(String, bool, &str)> = vec![
        (
            format!("{HDR}{good}t,S  #,S  #,0\n"),
            false,
            "mazes.csv:3: wrong length",
        ),
        (
            format!(
                "{HDR}{good}{}",
                row(&["S  .#", "# # #", "#   #", "# ###", "#  G "], &A)
            ),
            false,
            "mazes.csv:3: unknown character",
        ),
        (
            "source,question,rating\nt,S,0\n".to_string(),
            false,
            "mazes.csv:1: missing column `answer`",
        ),
        (String::new(), false, "mazes.csv: empty file"),
        (
            format!("{HDR}{good}{}", row(&Q, &A_NO_WALL)),
            false,
            "mazes.csv:3: answer contradicts givens",
        ),
        (
            format!(
                "{HDR}{good}{}",
                row(
                    &["S   #", "# # #", "#   #", "#####", "#  G "],
                    &["S   #", "# # #", "#   #", "#####", "#  G "]
                )
            ),
            true,
            "mazes.csv:3: no path",
        ),
        (
            format!(
                "{HDR}{good}{}",
                row(
                    &["S   G", "     ", "     ", "     ", "     "],
                    &["So  G", "     ", "     ", "     ", "     "]
                )
            ),
            false,
            "mazes.csv:3: invalid answer",
        ),
        (
            format!("{HDR}{good}t,{},,0\n", Q.concat()),
            false,
            "mazes.csv:3: missing answer",
        ),
    ];
    for (text, verify, want) in cases {
        let msg = load_err(&text, verify);
        assert!(msg.contains(want), "expected {want:?} in {msg:?}");
    }
    // On an open 5x5 grid S -> G takes 8 moves; this detour takes 12.
    let detour = row(
        &["S    ", "     ", "     ", "     ", "    G"],
        &["S ooo", "o o o", "ooo o", "    o", "    G"],
    );
    let msg = load_err(&format!("{HDR}{good}{detour}"), true);
    assert!(msg.contains("mazes.csv:3: path not shortest"), "{msg}");
    assert!(msg.contains("12 moves, the shortest has 8"), "{msg}");
}

#[test]
fn skip_invalid_counts_by_kind() {
    let good = row(&Q, &A);
    let text = format!(
        "{HDR}{good}t,S,S,0\n{good}{}t,{},,0\n{good}",
        row(&Q, &A_NO_WALL),
        Q.concat()
    );
    let (_dir, path) = write(&text);
    let opts = LoadOptions {
        skip_invalid: true,
        verify: true,
    };
    let loaded = load_csv(&path, Some((5, 5)), opts).expect("skips");
    assert_eq!(loaded.pairs.len(), 3);
    assert_eq!(loaded.sources, vec!["t"; 3]);
    assert_eq!(loaded.n_skipped(), 3);
    for kind in [
        ProblemKind::WrongLength,
        ProblemKind::ContradictsGivens,
        ProblemKind::MissingAnswer,
    ] {
        assert_eq!(loaded.skipped.get(&kind), Some(&1), "{kind:?}");
    }
    assert_eq!(loaded.examples[0].line, 3);
    let report = stats(&loaded, 5, 5);
    assert!(
        report.contains("mazes: 3 (5x5)") && report.contains("min 7, mean 7.0, max 7"),
        "{report}"
    );
}

#[test]
fn csv_round_trip() {
    let o = GenOptions::preset("20x20").expect("preset");
    let mazes = generate_many(&o, 30, 4).unwrap();
    let rows: Vec<_> = mazes.iter().map(|m| to_row(m, "gen", "0")).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.csv");
    csvio::write_rows(&path, &rows).expect("write");
    let opts = LoadOptions {
        skip_invalid: false,
        verify: true,
    };
    let loaded = load_csv(&path, None, opts).expect("load");
    assert_eq!(loaded.pairs, mazes);
    assert_eq!(
        load_csv(&path, Some((20, 20)), opts).expect("load").pairs,
        mazes
    );
    let report = stats(&loaded, 20, 20);
    assert!(
        report.contains("mazes: 30 (20x20)") && report.contains("shortest paths per maze"),
        "{report}"
    );
}

#[test]
fn size_inference_failure_names_file() {
    let msg = load_err(&format!("{HDR}t,S G,SoG,0\n"), false);
    assert!(
        msg.contains("mazes.csv:2: cannot infer the maze size"),
        "{msg}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parse_and_score_never_panic(q in "[# SGo.x]{0,30}", a in "[# SGo]{0,30}", h in 0usize..7, w in 0usize..7) {
        let _ = parse_grid(&q, h, w, false);
        let qg: Vec<u8> = q.bytes().map(|b| b % 7).collect();
        let ag: Vec<u8> = a.bytes().map(|b| b % 7).collect();
        let _ = score(&qg, &ag, &ag, h, w);
        let _ = check_pair(&qg, &ag, h, w, true);
        let _ = shortest_path(&qg, h, w);
        let _ = count_shortest_paths(&qg, h, w);
        let _ = transform(&qg, h, w, h + w);
        let _ = pretty(&qg, w);
    }

    #[test]
    fn score_of_mutated_labels_never_panics(seed in 0u64..1000, flips in proptest::collection::vec((0usize..81, 0u8..6), 0..6)) {
        let o = GenOptions::preset("9x9").expect("preset");
        let m = &generate_many(&o, 1, seed).unwrap()[0];
        let mut pred = m.answer.clone();
        for (i, v) in flips {
            pred[i] = v;
        }
        let s = score(&m.question, &pred, &m.answer, 9, 9);
        prop_assert_eq!(s.valid, check_pair(&m.question, &pred, 9, 9, false).is_ok());
        if s.valid {
            prop_assert!(s.len_ratio.unwrap_or(0.0) >= 1.0);
        }
    }

    #[test]
    fn load_never_panics(rows in proptest::collection::vec(("[a-z]{0,3}", "[# SGo,\"]{0,12}", "[# SGo]{0,10}"), 0..5)) {
        let mut text = String::from(HDR);
        for (s, q, a) in &rows {
            text += &format!("{s},{q},{a},1\n");
        }
        let (_dir, path) = write(&text);
        for (skip_invalid, verify) in [(true, true), (false, false)] {
            let _ = load_csv(&path, None, LoadOptions { skip_invalid, verify });
            let _ = load_csv(&path, Some((3, 3)), LoadOptions { skip_invalid, verify });
        }
    }
}
