//! How `trldm eval` aggregates per-puzzle scores (src/eval.rs `Tally`,
//! `EvalResult`, its summary and eval.csv): predictions built by hand for
//! real Sudoku puzzles and hand-drawn mazes, checked against numbers
//! computed by hand.
use tch::Tensor;
use trldm::data::{Dataset, Layout, TaskInfo, TaskKind};
use trldm::eval::{write_csv, EvalResult, Tally};
use trldm::tasks::{maze, sudoku, LoadOptions, Pair};

mod common;

/// One predicted token row: the tokens of `grid` as the answer of `question`.
fn row(info: &TaskInfo, question: &[u8], grid: &[u8]) -> Vec<i64> {
    info.encode(&Pair {
        question: question.to_vec(),
        answer: grid.to_vec(),
    })
    .target
}

/// Rows `lo..hi` of the data set, with the predicted `rows` and `steps`.
fn add(tally: &mut Tally, ds: &Dataset, lo: usize, rows: &[Vec<i64>], steps: &[usize]) {
    let hi = lo + rows.len();
    let l = ds.info.seq_len() as i64;
    let pred = Tensor::from_slice(&rows.concat()).view([rows.len() as i64, l]);
    let part = |t: &Tensor| t.narrow(0, lo as i64, (hi - lo) as i64);
    tally
        .add(
            &ds.info,
            &ds.pairs[lo..hi],
            &pred,
            &part(&ds.target),
            &part(&ds.resp),
            steps,
        )
        .unwrap();
}

fn csv_row(r: &EvalResult) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.csv");
    write_csv(&path, r).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], trldm::eval::EVAL_HEADER);
    lines[1].to_string()
}

/// Four real Sudoku-Extreme puzzles, scored in two batches: one solved, one
/// with two of its blanks swapped (legal rows, broken columns), one left
/// fully masked, and one with a second legal solution (a real answer with
/// an unavoidable rectangle blanked) answered by the other solution.
///
/// Rejects: validity counted as exact match (1/4, not 2/4); token accuracy
/// averaged per puzzle instead of pooled over response positions (the
/// puzzles have different numbers of blanks), or counted over prompt
/// positions too; a tally that restarts per batch; optimality or length
/// ratio reported for Sudoku (they are maze-only: `None`, empty in
/// eval.csv); mean steps over batches instead of puzzles.
#[test]
fn sudoku_metrics_are_fractions_of_puzzles_and_token_accuracy_pools_blanks() {
    let file = common::shared_dir().join("data/sudoku/forum_hardest_1106.csv");
    let pairs = sudoku::load_csv(&file, Some(3), LoadOptions::default())
        .unwrap()
        .pairs;
    // A 2x2 "unavoidable rectangle" of a real answer: rows in one band,
    // columns in two stacks, digits a b / b a. Swapping a and b in it gives a
    // second solution of the answer with those four cells blanked.
    let rect = pairs
        .iter()
        .find_map(|p| {
            let g = &p.answer;
            for r1 in 0..9 {
                for r2 in r1 + 1..(r1 / 3 + 1) * 3 {
                    for c1 in 0..9 {
                        for c2 in (c1 / 3 + 1) * 3..9 {
                            let (a, b) = (9 * r1 + c1, 9 * r1 + c2);
                            let (c, d) = (9 * r2 + c1, 9 * r2 + c2);
                            if g[a] == g[d] && g[b] == g[c] {
                                return Some((g.clone(), [a, b, c, d]));
                            }
                        }
                    }
                }
            }
            None
        })
        .expect("an unavoidable rectangle in some answer");
    let (answer, cells) = rect;
    let mut question = answer.clone();
    let mut other = answer.clone();
    for &i in &cells {
        question[i] = 0;
    }
    other.swap(cells[0], cells[1]);
    other.swap(cells[2], cells[3]);
    let two_solutions = Pair {
        question,
        answer: answer.clone(),
    };
    let ds_pairs = vec![
        pairs[0].clone(),
        pairs[1].clone(),
        pairs[2].clone(),
        two_solutions.clone(),
    ];
    let info = TaskInfo {
        kind: TaskKind::Sudoku { box_size: 3 },
        layout: Layout::InPlace,
        path_weight: 1.0,
    };
    let ds = Dataset::new(info, ds_pairs.clone()).unwrap();
    let blanks: Vec<usize> = ds_pairs
        .iter()
        .map(|p| p.question.iter().filter(|&&c| c == 0).count())
        .collect();
    // 4 blanks against ~60: pooled and per-puzzle accuracy differ.
    assert_eq!(blanks[3], 4);

    // Puzzle 1: two blanks of one row with different digits swapped.
    let p1 = &ds_pairs[1];
    let (i, j) = (0..81)
        .flat_map(|i| (i + 1..(i / 9 + 1) * 9).map(move |j| (i, j)))
        .find(|&(i, j)| p1.question[i] == 0 && p1.question[j] == 0 && p1.answer[i] != p1.answer[j])
        .expect("a row with two blanks");
    let mut swapped = p1.answer.clone();
    swapped.swap(i, j);

    // The task's own metrics agree with what each prediction is meant to be.
    let n = 3;
    assert!(
        sudoku::score(
            &ds_pairs[0].question,
            &ds_pairs[0].answer,
            &ds_pairs[0].answer,
            n
        )
        .exact
    );
    let s1 = sudoku::score(&p1.question, &swapped, &p1.answer, n);
    assert!(!s1.exact && !s1.valid, "{s1:?}");
    let s3 = sudoku::score(&two_solutions.question, &other, &answer, n);
    assert!(!s3.exact && s3.valid, "{s3:?}");

    let mut tally = Tally::default();
    add(
        &mut tally,
        &ds,
        0,
        &[
            row(&info, &ds_pairs[0].question, &ds_pairs[0].answer),
            row(&info, &p1.question, &swapped),
        ],
        &[2, 4],
    );
    let masked = info.encode(&ds_pairs[2]).input;
    add(
        &mut tally,
        &ds,
        2,
        &[masked, row(&info, &two_solutions.question, &other)],
        &[8, 4],
    );
    let r = tally.result(4, 2.0);
    let right = (blanks[0] + blanks[1] - 2) as f64;
    let total = blanks.iter().sum::<usize>() as f64;
    let want = EvalResult {
        n: 4,
        exact: 0.25,
        valid: 0.5,
        optimal: None,
        len_ratio: None,
        token_acc: right / total,
        mean_steps: 4.5,
        wall_s: 2.0,
        puzzles_per_s: 2.0,
    };
    assert_eq!(r, want);
    assert_eq!(
        r.summary(),
        format!(
            "n=4 exact=0.250 valid=0.500 token_acc={:.3} steps=4.5 (2.0 puzzles/s)",
            right / total
        )
    );
    assert_eq!(
        csv_row(&r),
        format!(
            "4,0.250000,0.500000,,,{:.6},4.500,2.000,2.00",
            right / total
        )
    );
}

/// Three predictions for one hand-drawn maze with a short (5 moves) and a
/// long (7 moves) route: the shortest path, the long route, and no path.
///
/// Rejects: the length ratio averaged over valid puzzles only (1.2, not
/// 0.8) or left out for an invalid one; optimality equal to validity (2/3,
/// not 1/3); exact match equal to validity; token accuracy over every cell
/// instead of the response (open) cells; mazes reported without
/// optimality and length ratio.
#[test]
fn maze_length_ratio_averages_over_all_puzzles_with_zero_for_invalid_ones() {
    let (h, w) = (3, 5);
    let grid = |rows: [&str; 3]| maze::parse_grid(&rows.concat(), h, w, true).unwrap();
    let question = grid(["S    ", " ### ", "   G "]);
    let shortest = grid(["S    ", "o### ", "oooG "]);
    let long = grid(["Soooo", " ###o", "   Go"]);
    let pair = Pair {
        question: question.clone(),
        answer: shortest.clone(),
    };
    assert_eq!(maze::shortest_len(&question, h, w), Some(5));
    let sc = |pred: &[u8]| maze::score(&question, pred, &shortest, h, w);
    assert_eq!(sc(&shortest).len_ratio, Some(1.0));
    let s_long = sc(&long);
    assert!(
        s_long.valid && !s_long.exact && s_long.optimal == Some(false),
        "{s_long:?}"
    );
    assert_eq!(s_long.len_ratio, Some(7.0 / 5.0));
    let s_none = sc(&question);
    assert!(!s_none.valid && s_none.len_ratio == Some(0.0), "{s_none:?}");

    let info = TaskInfo {
        kind: TaskKind::Maze {
            height: h,
            width: w,
        },
        layout: Layout::InPlace,
        path_weight: 1.0,
    };
    let ds = Dataset::new(info, vec![pair.clone(), pair.clone(), pair]).unwrap();
    let mut tally = Tally::default();
    add(
        &mut tally,
        &ds,
        0,
        &[
            row(&info, &question, &shortest),
            row(&info, &question, &long),
            row(&info, &question, &question),
        ],
        &[4, 4, 5],
    );
    let r = tally.result(3, 1.5);
    // 10 open cells each: all right, none right (the routes swap), and the
    // 6 cells off the shortest path right.
    let want = EvalResult {
        n: 3,
        exact: 1.0 / 3.0,
        valid: 2.0 / 3.0,
        optimal: Some(1.0 / 3.0),
        len_ratio: Some((1.0 + 7.0 / 5.0 + 0.0) / 3.0),
        token_acc: 16.0 / 30.0,
        mean_steps: 13.0 / 3.0,
        wall_s: 1.5,
        puzzles_per_s: 2.0,
    };
    assert_eq!(r.n, want.n);
    for (name, got, exp) in [
        ("exact", r.exact, want.exact),
        ("valid", r.valid, want.valid),
        ("optimal", r.optimal.unwrap(), want.optimal.unwrap()),
        ("len_ratio", r.len_ratio.unwrap(), want.len_ratio.unwrap()),
        ("token_acc", r.token_acc, want.token_acc),
        ("mean_steps", r.mean_steps, want.mean_steps),
        ("puzzles_per_s", r.puzzles_per_s, want.puzzles_per_s),
    ] {
        assert!((got - exp).abs() < 1e-12, "{name}: {got} != {exp}");
    }
    assert_eq!(
        r.summary(),
        "n=3 exact=0.333 valid=0.667 optimal=0.333 len_ratio=0.800 token_acc=0.533 steps=4.3 (2.0 puzzles/s)"
    );
    assert_eq!(
        csv_row(&r),
        "3,0.333333,0.666667,0.333333,0.800000,0.533333,4.333,1.500,2.00"
    );
}

/// Sampling threads (`eval.workers`) split an evaluation's batches and add
/// their tallies up in batch order: 3 threads over 5 batches of generated
/// 9x9 mazes (the last batch short), with and without test-time
/// augmentation, score exactly what one thread scores. Every batch runs on
/// one libtorch thread either way (this test's thread is set to one), so
/// the numbers agree to the bit. Rejects a batch dropped or scored twice,
/// a thread that samples another's rows, and tallies added out of order.
#[test]
fn sampling_threads_score_exactly_what_one_thread_scores() {
    let cfg = config_with(&[
        "model.d=32",
        "model.heads=2",
        "model.layers=1",
        "task.n_train=4",
        "task.n_test=37",
        "eval.batch=8",
        "sample.steps=4",
        "seed=3",
    ]);
    let (_, test) = trldm::data::load_splits(&cfg).unwrap();
    let info = TaskInfo::from_config(&cfg);
    let ds = Dataset::new(info, test).unwrap();
    assert_eq!(ds.len(), 37);
    let (_vs, model) = trldm::model::build(&cfg, &ds.info, tch::Device::Cpu).unwrap();
    tch::set_num_threads(1);
    for tta in [1, 2] {
        let eval = |workers: usize| {
            let c = cfg
                .with_overrides(&[format!("eval.workers={workers}"), format!("eval.tta={tta}")])
                .unwrap();
            assert_eq!(trldm::eval::workers(&c, tch::Device::Cpu), workers);
            trldm::eval::evaluate(&model, &c, &ds, 0, tch::Device::Cpu).unwrap()
        };
        let (one, three) = (eval(1), eval(3));
        let scores = |r: &EvalResult| {
            (
                r.n,
                r.exact,
                r.valid,
                r.optimal,
                r.len_ratio,
                r.token_acc,
                r.mean_steps,
            )
        };
        assert_eq!(scores(&three), scores(&one), "tta = {tta}");
        // Scores of a real sampling, not of an empty one.
        assert_eq!(one.mean_steps, 4.0 * tta as f64);
        assert!(one.token_acc > 0.0 && one.token_acc < 1.0, "{one:?}");
    }
}

/// Evaluations that draw nothing at random do not take libtorch's
/// generator lock (`seed::seeded`): the training threads' ranks
/// (`train.workers`) each evaluate their share of the test puzzles, and
/// with the lock held for a whole evaluation they ran one after the other
/// (a 24-minute run spent 6.5 minutes on a 3.3-minute final evaluation).
/// While another thread holds the lock, a deterministic evaluation
/// finishes and one with temperature sampling waits for the lock.
/// Rejects: the lock taken whatever the sampling (the first evaluation
/// never ends while the lock is held), and the lock skipped for random
/// sampling (the second one ends while it is held).
#[test]
fn deterministic_evaluations_do_not_wait_for_the_generator_lock() {
    use std::sync::mpsc::{channel, RecvTimeoutError};
    use std::time::Duration;
    let cfg = config_with(&[
        "model.d=32",
        "model.heads=2",
        "model.layers=1",
        "task.n_train=4",
        "task.n_test=8",
        "sample.steps=4",
        "eval.workers=1",
    ]);
    let gumbel = cfg
        .with_overrides(&["sample.temperature=0.5".into()])
        .unwrap();
    assert!(cfg.sample.deterministic() && !gumbel.sample.deterministic());
    // Each evaluation builds its own model and test set (neither is
    // shared between threads; building draws under the lock), then waits
    // until another thread holds the lock.
    let (ready_tx, ready) = channel();
    let (done_tx, done) = channel();
    let mut gos = Vec::new();
    for c in [cfg, gumbel] {
        let (go, go_rx) = channel::<()>();
        gos.push(go);
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let (_, test) = trldm::data::load_splits(&c).unwrap();
            let ds = Dataset::new(TaskInfo::from_config(&c), test).unwrap();
            let (_vs, model) = trldm::model::build(&c, &ds.info, tch::Device::Cpu).unwrap();
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let r = trldm::eval::evaluate(&model, &c, &ds, 0, tch::Device::Cpu).unwrap();
            done_tx.send((c.sample.deterministic(), r.n)).unwrap();
        });
    }
    for _ in 0..2 {
        ready.recv().unwrap();
    }
    let (held_tx, held) = channel();
    let (release, release_rx) = channel::<()>();
    let holder = std::thread::spawn(move || {
        trldm::seed::seeded(0, || {
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    held.recv().unwrap();
    for go in &gos {
        go.send(()).unwrap();
    }
    // While the lock is held, the deterministic one ends (a tiny model on
    // 8 puzzles: well under a second; the wait allows 5 minutes) and the
    // random one cannot.
    let first = done.recv_timeout(Duration::from_secs(300));
    let second = done.recv_timeout(Duration::from_secs(2));
    assert_eq!(
        (first, second),
        (Ok((true, 8)), Err(RecvTimeoutError::Timeout)),
        "(deterministic?, puzzles) of the evaluations that ended while another thread \
         held the generator lock: only the deterministic one should have"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(done.recv().unwrap(), (false, 8));
}

/// The default run config with `sets` (`key=value`) applied.
fn config_with(sets: &[&str]) -> trldm::config::RunConfig {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    trldm::config::RunConfig::default()
        .with_overrides(&sets)
        .unwrap()
}
