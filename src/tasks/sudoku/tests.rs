use super::*;
use crate::tasks::{LoadOptions, Pair, ProblemKind};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

fn shared_dir() -> PathBuf {
    std::env::var("TRLDM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
}

fn data_files() -> Vec<PathBuf> {
    let dir = shared_dir().join("data/sudoku");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CSV in {}", dir.display());
    files
}

fn hardest() -> Vec<Pair> {
    let path = shared_dir().join("data/sudoku/forum_hardest_1106.csv");
    load_csv(&path, Some(3), LoadOptions::default())
        .unwrap()
        .pairs
}

fn strict() -> LoadOptions {
    LoadOptions {
        skip_invalid: false,
        verify: true,
    }
}

fn lenient() -> LoadOptions {
    LoadOptions {
        skip_invalid: true,
        verify: true,
    }
}

fn clue_count(g: &[u8]) -> usize {
    g.iter().filter(|&&c| c != 0).count()
}

const Q: &str = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
const A: &str = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

#[test]
fn shared_files_load_verified_and_solver_reproduces_answers() {
    for path in data_files() {
        let loaded = load_csv(&path, None, strict()).unwrap();
        let rows = std::fs::read_to_string(&path).unwrap().lines().count() - 1;
        assert_eq!(loaded.pairs.len(), rows, "{}", path.display());
        assert_eq!(load_any(&path, None, strict()).unwrap().pairs.len(), rows);
        for p in &loaded.pairs {
            let sol = solve(&p.question, 3, 2);
            assert_eq!(sol.count, 1);
            assert_eq!(sol.first.as_ref(), Some(&p.answer));
        }
    }
}

#[test]
fn text_form_round_trips() {
    let q = parse_grid(Q, 3).unwrap();
    assert_eq!(format_grid(&q, 3), Q);
    assert_eq!(parse_grid(&Q.replace('.', "0"), 3).unwrap(), q);
    assert_eq!(infer_box(16), Some(2));
    assert_eq!(infer_box(81), Some(3));
    assert_eq!(infer_box(256), Some(4));
    assert_eq!(infer_box(625), Some(5));
    assert_eq!(infer_box(80), None);
    let big: Vec<u8> = (0..256).map(|i| (i % 17) as u8).collect();
    let text = format_grid(&big, 4);
    assert!(text.contains('G') && text.contains('.'));
    assert_eq!(parse_grid(&text, 4).unwrap(), big);
    assert_eq!(parse_grid(&text.to_lowercase(), 4).unwrap(), big);
    let picture = pretty(&q, 3);
    assert_eq!(picture.lines().count(), 11);
    assert!(picture.starts_with("5 3 . | . 7 . | . . .\n6 . . | 1 9 5 | . . .\n"));
    assert!(picture.contains("------+-------+------"));
}

#[test]
fn parse_errors_name_the_problem() {
    let e = parse_grid(&Q[..80], 3).unwrap_err();
    assert_eq!(e.kind, ProblemKind::WrongLength);
    assert!(e.detail.contains("80 characters, expected 81"), "{e}");
    let bad = format!("{}x{}", &Q[..10], &Q[11..]);
    let e = parse_grid(&bad, 3).unwrap_err();
    assert_eq!(e.kind, ProblemKind::UnknownChar);
    assert!(
        e.detail.contains("'x' at position 11 (row 2, column 2)"),
        "{e}"
    );
    let e = parse_grid(&Q.replace('7', "A"), 3).unwrap_err();
    assert_eq!(e.kind, ProblemKind::UnknownChar);
    assert_eq!(parse_grid("1234341221434321", 2).unwrap()[4], 3);
    assert_eq!(
        parse_grid("5234341221434321", 2).unwrap_err().kind,
        ProblemKind::UnknownChar
    );
}

#[test]
fn solver_handles_bad_and_edge_inputs() {
    let q = parse_grid(Q, 3).unwrap();
    let a = parse_grid(A, 3).unwrap();
    assert_eq!(solve(&q, 3, 2).first, Some(a.clone()));
    assert_eq!(solve(&a, 3, 2).count, 1);
    assert_eq!(solve(&a, 3, 2).guesses, 0);
    assert_eq!(solve(&[0; 81], 3, 5).count, 5);
    assert_eq!(solve(&q[..80], 3, 2).count, 0);
    assert_eq!(solve(&q, 7, 2).count, 0);
    let mut clash = q.clone();
    clash[2] = 5; // 5 already in row 1
    assert_eq!(solve(&clash, 3, 2).count, 0);
    let mut out_of_range = q.clone();
    out_of_range[2] = 10;
    assert_eq!(solve(&out_of_range, 3, 2).count, 0);
    assert_eq!(solve(&[0; 625], 5, 1).count, 1);
}

#[test]
fn generated_9x9_puzzles_are_unique_in_every_band() {
    let mut total = 0;
    for (clues, seed) in [(22, 1), (25, 2), (30, 3), (36, 4)] {
        let opts = GenOptions {
            n: 3,
            clues,
            min_guesses: None,
            max_guesses: None,
        };
        let pairs = generate_many(&opts, 260, seed);
        assert_eq!(pairs.len(), 260);
        for p in &pairs {
            let sol = solve(&p.question, 3, 2);
            assert_eq!(sol.count, 1);
            assert_eq!(sol.first.as_ref(), Some(&p.answer));
            assert!(is_valid_solution(&p.question, &p.answer, 3));
            let k = clue_count(&p.question);
            assert!(
                k >= clues && (clues < 30 || k == clues),
                "{k} clues for target {clues}"
            );
        }
        total += pairs.len();
    }
    assert!(total >= 1000);
}

#[test]
fn generation_is_deterministic_and_respects_the_band() {
    let opts = GenOptions {
        n: 3,
        clues: 24,
        min_guesses: Some(1),
        max_guesses: Some(50),
    };
    let a = generate_many(&opts, 20, 7);
    assert_eq!(a, generate_many(&opts, 20, 7));
    assert_ne!(a, generate_many(&opts, 20, 8));
    for p in &a {
        let g = solve(&p.question, 3, 1).guesses;
        assert!((1..=50).contains(&g), "{g} guesses");
    }
}

#[test]
fn other_sizes_generate() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..50 {
        let (p, info) = generate(2, 4, &mut rng);
        assert_eq!(solve(&p.question, 2, 2).count, 1);
        assert!(is_valid_solution(&p.question, &p.answer, 2));
        assert_eq!(info.clues, clue_count(&p.question));
    }
    for _ in 0..2 {
        let (p, info) = generate(4, 150, &mut rng);
        assert_eq!(info.clues, 150);
        assert_eq!(solve(&p.question, 4, 2).count, 1);
        assert!(is_valid_solution(&p.question, &p.answer, 4));
    }
    let full = random_full_grid(5, &mut rng);
    assert!(is_valid_solution(&full, &full, 5));
}

#[test]
fn augmentations_keep_validity_and_uniqueness() {
    let pairs = hardest();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut transposed = 0;
    for p in pairs.iter().take(150) {
        let a = augment(p, 3, &mut rng);
        assert!(is_valid_solution(&a.question, &a.answer, 3));
        assert_eq!(clue_count(&a.question), clue_count(&p.question));
        assert_eq!(solve(&a.question, 3, 2).count, 1);
        transposed += usize::from(a.question != p.question);
    }
    assert!(transposed > 140);
    let again = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        augment(&pairs[0], 3, &mut rng)
    };
    assert_eq!(again(5), again(5));
    assert_ne!(again(5), again(6));
    // 16x16 too.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (p, _) = generate(4, 200, &mut rng);
    let a = augment(&p, 4, &mut rng);
    assert!(is_valid_solution(&a.question, &a.answer, 4));
}

#[test]
fn subsample_augment_follows_the_protocol() {
    let pairs = hardest();
    let out = subsample_augment(&pairs, 10, 3, 1);
    assert_eq!(out.len(), 30);
    for chunk in out.chunks(3) {
        assert!(pairs.contains(&chunk[0]), "the original comes first");
        for a in chunk {
            assert!(is_valid_solution(&a.question, &a.answer, 3));
        }
    }
    assert_eq!(out, subsample_augment(&pairs, 10, 3, 1));
    assert_ne!(out, subsample_augment(&pairs, 10, 3, 2));
    let originals = subsample_augment(&pairs, 5, 1, 4);
    assert!(originals.iter().all(|p| pairs.contains(p)));
    assert_eq!(subsample_augment(&pairs, 1000, 1, 0), pairs);
    assert!(subsample_augment(&pairs, 3, 0, 0).is_empty());
}

#[test]
fn metrics_by_hand() {
    let q = parse_grid(Q, 3).unwrap();
    let a = parse_grid(A, 3).unwrap();
    let s = score(&q, &a, &a, 3);
    assert!(s.exact && s.valid);
    assert_eq!((s.optimal, s.len_ratio), (None, None));
    // A valid grid (digits 5 and 3 swapped everywhere) that changes givens.
    let swapped: Vec<u8> = a
        .iter()
        .map(|&d| match d {
            5 => 3,
            3 => 5,
            d => d,
        })
        .collect();
    assert!(is_valid_solution(&swapped, &swapped, 3));
    let s = score(&q, &swapped, &a, 3);
    assert!(!s.exact && !s.valid);
    assert_eq!(
        check_pair(&q, &swapped, 3, false).unwrap_err().kind,
        ProblemKind::ContradictsGivens
    );
    // A duplicate in a box (and its row): swap two cells of row 1, box 1.
    let mut dup = a.clone();
    dup[2] = dup[1];
    let s = score(&q, &dup, &a, 3);
    assert!(!s.exact && !s.valid);
    let e = check_pair(&q, &dup, 3, false).unwrap_err();
    assert_eq!(e.kind, ProblemKind::InvalidAnswer);
    assert!(e.detail.contains("twice"), "{e}");
    // A blank, a code out of range, a short grid: invalid, no panic.
    let mut blank = a.clone();
    blank[2] = 0;
    assert!(!score(&q, &blank, &a, 3).valid);
    assert_eq!(
        check_pair(&q, &blank, 3, false).unwrap_err().kind,
        ProblemKind::InvalidAnswer
    );
    let mut high = a.clone();
    high[2] = 200;
    assert!(!score(&q, &high, &a, 3).valid);
    assert!(!score(&q, &a[..80], &a, 3).valid);
    assert!(!score(&q, &a, &a, 9).valid);
}

/// Writes `text` as `name` in a fresh temporary folder.
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The bad-row cases: (row text, expected kind, expected text in the error).
fn bad_rows() -> Vec<(String, ProblemKind, &'static str)> {
    let mut changed = A.to_string();
    changed.replace_range(0..1, "4");
    // Two 5s in row 1: no solution.
    let unsolvable = format!("55{}", &Q[2..]);
    // Only the first row given: many solutions.
    let multi = format!("{}{}", &A[..9], ".".repeat(72));
    vec![
        (
            format!("x,{},{A},0", &Q[..80]),
            ProblemKind::WrongLength,
            "wrong length: question: 80 characters",
        ),
        (
            format!("x,{}#{},{A},0", &Q[..5], &Q[6..]),
            ProblemKind::UnknownChar,
            "unknown character: question: character '#' at position 6",
        ),
        (
            format!("x,{Q},{changed},0"),
            ProblemKind::ContradictsGivens,
            "answer contradicts givens: row 1, column 1: given 5 but answer 4",
        ),
        (
            format!("x,{unsolvable},,0"),
            ProblemKind::Unsolvable,
            "unsolvable",
        ),
        (
            format!("x,{multi},,0"),
            ProblemKind::MultipleSolutions,
            "multiple solutions",
        ),
        (
            format!("x,{Q},{},0", &A[..80]),
            ProblemKind::WrongLength,
            "wrong length: answer: 80 characters",
        ),
    ]
}

#[test]
fn bad_rows_name_file_and_line() {
    for (row, kind, text) in bad_rows() {
        let csv = format!("source,question,answer,rating\nok,{Q},{A},0\n{row}\nok,{Q},,0\n");
        let (_dir, path) = temp_file("bad.csv", &csv);
        let err = load_csv(&path, None, strict()).unwrap_err().to_string();
        assert!(err.contains("bad.csv:3: "), "{err}");
        assert!(err.contains(text), "{err} lacks {text}");
        let loaded = load_csv(&path, None, lenient()).unwrap();
        assert_eq!(loaded.pairs.len(), 2);
        assert_eq!(loaded.skipped.get(&kind), Some(&1), "{kind:?}: {err}");
        assert_eq!(loaded.examples[0].line, 3);
    }
}

#[test]
fn skip_invalid_counts_by_kind() {
    let mut csv = format!("source,question,answer,rating\nok,{Q},{A},0\n");
    for (row, _, _) in bad_rows() {
        csv.push_str(&row);
        csv.push('\n');
    }
    let (_dir, path) = temp_file("mixed.csv", &csv);
    let loaded = load_csv(&path, Some(3), lenient()).unwrap();
    assert_eq!(loaded.pairs.len(), 1);
    assert_eq!(loaded.n_skipped(), 6);
    assert_eq!(loaded.skipped[&ProblemKind::WrongLength], 2);
    assert_eq!(loaded.skipped[&ProblemKind::MultipleSolutions], 1);
    let report = stats(&loaded, 3);
    assert!(report.contains("puzzles: 1 (9x9), skipped: 6"), "{report}");
    assert!(report.contains("skipped wrong length: 2"), "{report}");
    // Without verify a unique-looking answer is not checked against the solver.
    let opts = LoadOptions {
        skip_invalid: true,
        verify: false,
    };
    assert_eq!(load_csv(&path, Some(3), opts).unwrap().n_skipped(), 6);
}

#[test]
fn bad_files_name_the_file() {
    let (_d, empty) = temp_file("empty.csv", "");
    let err = load_csv(&empty, None, strict()).unwrap_err().to_string();
    assert!(
        err.contains("empty.csv") && err.contains("empty file"),
        "{err}"
    );
    let err = load_any(&empty, None, strict()).unwrap_err().to_string();
    assert!(err.contains("empty.csv"), "{err}");
    let (_d, no_q) = temp_file("noq.csv", &format!("source,puzzle,answer\nx,{Q},{A}\n"));
    let err = load_csv(&no_q, None, strict()).unwrap_err().to_string();
    assert!(
        err.contains("noq.csv:1: missing column `question`"),
        "{err}"
    );
    let (_d, empty_plain) = temp_file("empty.txt", "# nothing\n\n");
    let err = load_plain(&empty_plain, None, strict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.txt: no puzzles"), "{err}");
    // A file of another size: the box size is inferred, and a fixed one is enforced.
    let err = load_plain_str(&format!("{Q}\n"), Path::new("q.txt"), Some(2), strict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("q.txt:1: wrong length"), "{err}");
}

#[test]
fn plain_files_and_load_any() {
    let text = format!("# a comment\n\n{Q}\n{Q} {A}\n  {}  \n", Q.replace('.', "0"));
    let (_d, path) = temp_file("p.txt", &text);
    let loaded = load_any(&path, None, strict()).unwrap();
    assert_eq!(loaded.pairs.len(), 3);
    assert!(loaded.pairs.iter().all(|p| format_grid(&p.answer, 3) == A));
    assert_eq!(loaded.sources[0], "p");
    let bad = format!("{Q}\n# c\n{}\n", &Q[..79]);
    let err = load_plain_str(&bad, Path::new("p.txt"), None, strict())
        .unwrap_err()
        .to_string();
    assert!(err.contains("p.txt:3: wrong length"), "{err}");
    // 4x4 plain file with inferred box size.
    let small = load_plain_str("1.3.3..2.1.34..1\n", Path::new("s.txt"), None, strict()).unwrap();
    assert!(is_valid_solution(
        &small.pairs[0].question,
        &small.pairs[0].answer,
        2
    ));
}

#[test]
fn written_rows_load_back() {
    let pairs = generate_many(
        &GenOptions {
            n: 3,
            clues: 28,
            min_guesses: None,
            max_guesses: None,
        },
        20,
        9,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.csv");
    save_csv(&path, &pairs, 3, "generated").unwrap();
    let loaded = load_any(&path, Some(3), strict()).unwrap();
    assert_eq!(loaded.pairs, pairs);
    assert_eq!(loaded.sources[0], "generated");
    let row = to_row(&pairs[0], 3, "s", "7");
    assert_eq!(row.question.len(), 81);
    assert_eq!(row.rating, "7");
    let report = stats(&loaded, 3);
    assert!(
        report.contains("clues: min 28, mean 28.0, max 28"),
        "{report}"
    );
    assert!(report.contains("generated: 20"), "{report}");
}

/// A row text: a real puzzle mutated, or random characters.
fn row_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[.0-9A-Za-z#x ]{0,90}",
        (0usize..81, "[.0-9A-Z,\"x]{0,3}").prop_map(|(i, s)| format!(
            "{}{s}{}",
            &Q[..i],
            &Q[i + 1..]
        )),
        (0usize..81, 0usize..81).prop_map(|(i, j)| format!("{}{}", &A[..i.max(j)], &Q[i.max(j)..])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parse_never_panics(s in "\\PC{0,100}", n in 0usize..7) {
        let _ = parse_grid(&s, n);
        let _ = infer_box(s.len());
    }

    #[test]
    fn load_never_panics(
        rows in proptest::collection::vec((row_text(), row_text()), 0..6),
        header in prop_oneof![Just("source,question,answer,rating"), Just("question"), Just("question,answer"), Just("a,b")],
        skip in any::<bool>(),
        verify in any::<bool>(),
        junk in "\\PC{0,40}",
    ) {
        let opts = LoadOptions { skip_invalid: skip, verify };
        let mut csv = format!("{header}\n");
        let mut plain = String::new();
        for (q, a) in &rows {
            csv.push_str(&format!("s,{q},{a},1\n"));
            plain.push_str(&format!("{q} {a}\n"));
        }
        let path = Path::new("p.csv");
        for n in [None, Some(3)] {
            let _ = load_csv_str(&csv, path, n, opts);
            let _ = load_csv_str(&junk, path, n, opts);
            let _ = load_plain_str(&plain, path, n, opts);
            let _ = load_plain_str(&junk, path, n, opts);
        }
    }

    #[test]
    fn score_never_panics(pred in proptest::collection::vec(any::<u8>(), 0..90)) {
        let q = parse_grid(Q, 3).unwrap();
        let a = parse_grid(A, 3).unwrap();
        let s = score(&q, &pred, &a, 3);
        prop_assert_eq!(s.exact, pred == a);
    }
}
