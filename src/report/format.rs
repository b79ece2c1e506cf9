//! How each metric is shown (scale, decimals, header, which way is better)
//! and the escaping rules of Markdown and LaTeX.

/// Which mean gets the bold face in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Max,
    Min,
    None,
}

impl Better {
    /// Parses `"max"`, `"min"` or `"none"`.
    pub fn parse(s: &str) -> Option<Better> {
        match s {
            "max" => Some(Better::Max),
            "min" => Some(Better::Min),
            "none" => Some(Better::None),
            _ => None,
        }
    }
}

/// Display rules of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    /// Multiplier for display (100 for fractions shown as percent).
    pub scale: f64,
    pub decimals: usize,
    /// Default column header / axis label, e.g. `EM (%)`.
    pub header: String,
    pub better: Better,
}

impl MetricInfo {
    /// The value as displayed (scaled and rounded), e.g. `67.2`.
    pub fn show(&self, v: f64) -> String {
        format!("{:.*}", self.decimals, v * self.scale)
    }
}

/// Display rules for a metric name (eval.csv column, `final_loss`, or a
/// train.csv column such as `loss` / `eval_exact`). Fractions in [0, 1]
/// (exact, valid, optimal, token_acc) are shown ×100 with one decimal like
/// the paper; len_ratio with three decimals.
pub fn metric_info(name: &str) -> MetricInfo {
    // `exact@n4`: the metric of the run's `eval_n4.csv`.
    if let Some((base, tag)) = name.rsplit_once('@') {
        let mut info = metric_info(base);
        info.header = format!("{} [{tag}]", info.header);
        return info;
    }
    let (base, eval_prefix) = match name.strip_prefix("eval_") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let pct = |h: &str| MetricInfo {
        scale: 100.0,
        decimals: 1,
        header: if eval_prefix {
            format!("Eval {h} (%)")
        } else {
            format!("{h} (%)")
        },
        better: Better::Max,
    };
    let plain = |decimals: usize, header: &str, better: Better| MetricInfo {
        scale: 1.0,
        decimals,
        header: header.to_string(),
        better,
    };
    match base {
        "exact" => pct("EM"),
        "valid" => pct("Valid"),
        "optimal" => pct("Optimal"),
        "token_acc" => pct("Token acc."),
        "len_ratio" => plain(3, "Mean Len. Ratio", Better::Max),
        "mean_steps" => plain(2, "Mean steps", Better::None),
        "wall_s" => plain(1, "Wall (s)", Better::None),
        "puzzles_per_s" => plain(1, "Puzzles/s", Better::None),
        "n" => plain(0, "Test puzzles", Better::None),
        "final_loss" => plain(4, "Final loss", Better::Min),
        "loss" => plain(4, "Loss", Better::Min),
        "lr" => plain(6, "Learning rate", Better::None),
        "grad_norm" => plain(3, "Gradient norm", Better::None),
        _ => plain(3, name, Better::Max),
    }
}

/// Escapes `_ % & #` outside `$...$` math (an already escaped `\%` stays), so labels
/// may contain math such as `$n_{\text{rec}}=2$`; `±` and `×` become math.
pub fn latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut in_math = false;
    let mut prev_backslash = false;
    for c in s.chars() {
        if in_math {
            out.push(c);
            if c == '$' && !prev_backslash {
                in_math = false;
            }
            prev_backslash = c == '\\' && !prev_backslash;
            continue;
        }
        match c {
            '$' if !prev_backslash => {
                in_math = true;
                out.push('$');
            }
            '_' | '%' | '&' | '#' if !prev_backslash => {
                out.push('\\');
                out.push(c);
            }
            '±' => out.push_str("$\\pm$"),
            '×' => out.push_str("$\\times$"),
            _ => out.push(c),
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    if in_math {
        // An unbalanced `$`: close it so the document still compiles.
        out.push('$');
    }
    out
}

/// Escapes `|` (a column separator) in a Markdown table cell.
pub fn markdown(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_ratio_formats() {
        assert_eq!(metric_info("exact").show(0.672), "67.2");
        assert_eq!(metric_info("exact").header, "EM (%)");
        assert_eq!(metric_info("eval_valid").header, "Eval Valid (%)");
        assert_eq!(metric_info("len_ratio").show(0.90512), "0.905");
        assert_eq!(metric_info("final_loss").better, Better::Min);
    }

    #[test]
    fn latex_escapes_outside_math_only() {
        assert_eq!(
            latex("reset_z_every 50% & #1"),
            "reset\\_z\\_every 50\\% \\& \\#1"
        );
        assert_eq!(
            latex("TR-LDM ($n_{\\text{rec}}=2$) low_confidence"),
            "TR-LDM ($n_{\\text{rec}}=2$) low\\_confidence"
        );
        assert_eq!(latex("EM (\\%)"), "EM (\\%)");
        assert_eq!(latex("a ± b"), "a $\\pm$ b");
        assert_eq!(latex("odd $x_1"), "odd $x_1$");
    }
}
