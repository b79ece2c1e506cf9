//! Synthetic run folders (tests and `trldm report --bench`), written in the
//! run-folder format of `docs/RUNS.md`.
use crate::config::RunConfig;
use crate::run::{State, Status};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// One synthetic run.
pub struct FixtureRun<'a> {
    pub id: &'a str,
    pub config: &'a RunConfig,
    pub state: State,
    /// eval.csv rows as `(metric, value)`; `None` = no eval.csv. A `None`
    /// value writes an empty cell (e.g. `optimal` for Sudoku).
    pub eval: Option<&'a [(&'a str, Option<f64>)]>,
    /// train.csv rows: `(step, loss, eval_exact)`.
    pub train: &'a [(u64, f64, Option<f64>)],
}

/// Writes `<sweep>/<id>/{config.toml,status.json,eval.csv,train.csv}`.
pub fn write_run(sweep: &Path, run: &FixtureRun) -> Result<()> {
    let dir = sweep.join(run.id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("config.toml"), run.config.to_toml_string())?;
    let reason = match run.state {
        State::Failed => "CUDA error: out of memory",
        State::Diverged => "grad norm 3.2e5 > train.max_grad_norm",
        _ => "",
    };
    let status = Status::new(
        run.state,
        run.train.last().map(|t| t.0).unwrap_or(0),
        reason,
    );
    std::fs::write(dir.join("status.json"), serde_json::to_vec(&status)?)?;
    if let Some(eval) = run.eval {
        let header: Vec<&str> = eval.iter().map(|(k, _)| *k).collect();
        let row: Vec<String> = eval
            .iter()
            .map(|(_, v)| v.map(|x| x.to_string()).unwrap_or_default())
            .collect();
        std::fs::write(
            dir.join("eval.csv"),
            format!("{}\n{}\n", header.join(","), row.join(",")),
        )?;
    }
    if !run.train.is_empty() {
        let mut s = String::from(
            "step,loss,lr,grad_norm,tokens_per_s,elapsed_s,eval_exact,eval_valid,eval_optimal,eval_token_acc\n",
        );
        for (step, loss, ex) in run.train {
            let ev = ex
                .map(|e| format!("{e},{e},{e},{e}"))
                .unwrap_or_else(|| ",,,".into());
            let _ = writeln!(
                s,
                "{step},{loss},0.001,1.0,10000,{},{ev}",
                *step as f64 * 0.1
            );
        }
        std::fs::write(dir.join("train.csv"), s)?;
    }
    Ok(())
}

/// A maze-style eval row: exact, valid, optimal, len_ratio, token_acc.
pub fn maze_eval(exact: f64) -> Vec<(&'static str, Option<f64>)> {
    vec![
        ("n", Some(200.0)),
        ("exact", Some(exact)),
        ("valid", Some((exact + 0.1).min(1.0))),
        ("optimal", Some((exact + 0.05).min(1.0))),
        ("len_ratio", Some(exact * 0.98)),
        ("token_acc", Some((exact + 0.2).min(1.0))),
        ("mean_steps", Some(16.0)),
        ("wall_s", Some(3.5)),
        ("puzzles_per_s", Some(57.0)),
    ]
}

/// A training curve of `rows` rows every 50 steps, evaluated every 5th row.
pub fn curve(rows: usize, final_loss: f64, final_exact: f64) -> Vec<(u64, f64, Option<f64>)> {
    (0..rows)
        .map(|i| {
            let frac = (i + 1) as f64 / rows as f64;
            let loss = final_loss + 2.0 * (1.0 - frac).powi(2);
            let ex = (i % 5 == 4 || i + 1 == rows).then_some(final_exact * frac);
            ((i as u64 + 1) * 50, loss, ex)
        })
        .collect()
}
