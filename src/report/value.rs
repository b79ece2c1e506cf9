//! Config values as the report sees them: dotted keys, display, ordering
//! and matching against `where` filters.
use std::cmp::Ordering;

use crate::dotted::as_f64;
pub use crate::dotted::Flat;

/// Flattens a table (e.g. a `where = { ... }` filter) into dotted keys.
pub fn flatten_table(t: &toml::Table) -> Flat {
    crate::dotted::leaves(t).into_iter().collect()
}

/// `RunConfig::default()` flattened (fills keys an older config.toml lacks).
pub fn default_config() -> Flat {
    toml::Value::try_from(crate::config::RunConfig::default())
        .map(|v| crate::dotted::flatten(&v))
        .unwrap_or_default()
}

/// The value as a number (integers and floats), for plot axes.
pub fn number(v: &toml::Value) -> Option<f64> {
    as_f64(v)
}

/// Short human form: `trldm`, `2`, `1e-4`, `0.3`, `true`.
pub fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format_float(*f),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// `1e-4`, `3e-4`, `0.5`, `10`, `1e6`: scientific for small and large values.
pub fn format_float(f: f64) -> String {
    let a = f.abs();
    if f != 0.0 && f.is_finite() && !(1e-2..1e5).contains(&a) {
        format!("{f:e}")
    } else {
        format!("{f}")
    }
}

/// Orders values numerically when both are numbers, else by their display.
pub fn compare(a: &toml::Value, b: &toml::Value) -> Ordering {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => display(a).cmp(&display(b)),
    }
}

/// Whether a config value satisfies a filter value: the one equality of
/// [`crate::dotted::equal`] (numbers within a relative 1e-9), an array means
/// "any of", a string filter matches a number written the same way.
pub fn matches(have: &toml::Value, want: &toml::Value) -> bool {
    if let toml::Value::Array(options) = want {
        if !matches!(have, toml::Value::Array(_)) {
            return options.iter().any(|w| matches(have, w));
        }
    }
    match (as_f64(have), want) {
        // `where = { "train.lr" = "1e-4" }`: a number written as a string.
        (Some(_), toml::Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .is_ok_and(|y| crate::dotted::equal(have, &toml::Value::Float(y))),
        _ => crate::dotted::equal(have, want),
    }
}

/// Identity of a value inside a group key (type-tagged, exact).
pub fn canonical(v: &toml::Value) -> String {
    let mut s = String::new();
    push_canonical(v, &mut s);
    s
}

/// Appends [`canonical`] to `out` (cheaper than toml's Display).
pub fn push_canonical(v: &toml::Value, out: &mut String) {
    use std::fmt::Write as _;
    let _ = match v {
        toml::Value::String(x) => write!(out, "s{x:?}"),
        toml::Value::Integer(x) => write!(out, "i{x}"),
        toml::Value::Float(x) => write!(out, "f{x:?}"),
        toml::Value::Boolean(x) => write!(out, "b{x}"),
        other => write!(out, "o{other}"),
    };
}

/// Flattens a TOML document into `out` (dotted keys). Config files written
/// by `RunConfig::to_toml_string` (`[section]` headers and `key = scalar`
/// lines) take a fast path; anything else goes through the full TOML parser.
pub fn flatten_toml_text(text: &str, out: &mut Flat) -> Result<(), String> {
    let mut fast = Flat::new();
    if parse_simple(text, &mut fast).is_some() {
        out.extend(fast);
        return Ok(());
    }
    let t: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    out.extend(crate::dotted::leaves(&t));
    Ok(())
}

/// The fast path of [`flatten_toml_text`]; `None` = not simple enough.
fn parse_simple(text: &str, out: &mut Flat) -> Option<()> {
    let bare = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']')?;
            if !bare(name) {
                return None;
            }
            section = name.to_string();
            continue;
        }
        let (k, v) = line.split_once(" = ")?;
        let k = k.trim();
        if !bare(k) {
            return None;
        }
        let key = if section.is_empty() {
            k.to_string()
        } else {
            format!("{section}.{k}")
        };
        if out.insert(key, simple_scalar(v.trim())?).is_some() {
            return None;
        }
    }
    Some(())
}

/// A basic string without escapes, a decimal integer, a float, or a bool.
fn simple_scalar(v: &str) -> Option<toml::Value> {
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        if inner.contains(['"', '\\', '#']) {
            return None;
        }
        return Some(toml::Value::String(inner.to_string()));
    }
    match v {
        "true" => return Some(toml::Value::Boolean(true)),
        "false" => return Some(toml::Value::Boolean(false)),
        _ => {}
    }
    let numeric = v
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !numeric || v.is_empty() || v.starts_with('+') {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        // Reject leading zeros (`007`), which TOML refuses.
        let digits = v.trim_start_matches('-');
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        return v.parse().ok().map(toml::Value::Integer);
    }
    // TOML floats need a digit on both sides of the dot.
    let bytes = v.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'.' {
            let before = i > 0 && bytes[i - 1].is_ascii_digit();
            let after = bytes.get(i + 1).is_some_and(|c| c.is_ascii_digit());
            if !before || !after {
                return None;
            }
        }
    }
    v.parse().ok().map(toml::Value::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Value as V;

    #[test]
    fn display_and_order() {
        assert_eq!(display(&V::Float(1e-4)), "1e-4");
        assert_eq!(display(&V::Float(3e-4)), "3e-4");
        assert_eq!(display(&V::Float(0.3)), "0.3");
        assert_eq!(display(&V::Integer(8)), "8");
        assert_eq!(compare(&V::Integer(8), &V::Integer(16)), Ordering::Less);
        assert_eq!(compare(&V::Float(1e-3), &V::Float(3e-4)), Ordering::Greater);
    }

    #[test]
    fn matching_is_numeric_and_any_of() {
        assert!(matches(&V::Float(0.0001), &V::Float(1e-4)));
        assert!(matches(&V::Float(2.0), &V::Integer(2)));
        assert!(matches(&V::Float(1e-4), &V::String("1e-4".into())));
        assert!(matches(
            &V::String("mdm".into()),
            &V::Array(vec![V::String("trm".into()), V::String("mdm".into())])
        ));
        assert!(!matches(
            &V::String("trldm".into()),
            &V::String("trm".into())
        ));
    }

    #[test]
    fn fast_config_parse_equals_toml() {
        let mut c = crate::config::RunConfig {
            name: "a b-c".into(),
            ..Default::default()
        };
        c.train.lr = 3e-4;
        c.train.max_grad_norm = 1e10;
        c.train.eps = 1e-3;
        c.task.wall_min = 0.25;
        for text in [
            c.to_toml_string(),
            crate::config::RunConfig::default().to_toml_string(),
        ] {
            let mut fast = Flat::new();
            assert!(parse_simple(&text, &mut fast).is_some(), "{text}");
            let t: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(fast, flatten_table(&t), "{text}");
        }
        // Anything unusual takes the full parser, with the same result.
        for text in [
            "x = [1, 2]\n",
            "[model]\nd = 1_000\n",
            "a = \"q\\\"x\"\n",
            "a.b = 1\n",
            "a = 007\n",
            "a = 1. \n",
            "a = 1 # c\n",
            "a = inf\n",
        ] {
            let mut fast = Flat::new();
            assert!(parse_simple(text, &mut fast).is_none(), "{text}");
            let mut full = Flat::new();
            let _ = flatten_toml_text(text, &mut full);
        }
    }

    #[test]
    fn flatten_dotted() {
        let t: toml::Table = toml::from_str("a = 1\n[model]\nn_rec = 2\n").unwrap();
        let f = flatten_table(&t);
        assert_eq!(f["model.n_rec"], V::Integer(2));
        assert_eq!(f["a"], V::Integer(1));
        assert!(default_config().contains_key("model.n_rec"));
    }
}
