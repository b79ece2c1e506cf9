//! Dotted keys over TOML trees (`model.n_rec` for `[model] n_rec`): the one
//! place that flattens, reads, writes and compares config values by key, for
//! run configs, sweep grids and report filters alike.
use std::collections::BTreeMap;

/// A TOML tree flattened to its leaves by dotted key.
pub type Flat = BTreeMap<String, toml::Value>;

/// `prefix.k` (or `k` at the top).
pub fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

/// The leaves of a table by dotted key, in table order; arrays are leaves.
/// A key written twice in two spellings (`"model.d"` quoted and `model.d`
/// nested) appears twice, so that callers can refuse it.
pub fn leaves(t: &toml::Table) -> Vec<(String, toml::Value)> {
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in t {
            let key = join(prefix, k);
            match v {
                toml::Value::Table(inner) => walk(inner, &key, out),
                leaf => out.push((key, leaf.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk(t, "", &mut out);
    out
}

/// The leaves of a TOML value by dotted key (a scalar is the one leaf "").
pub fn flatten(v: &toml::Value) -> Flat {
    match v {
        toml::Value::Table(t) => leaves(t).into_iter().collect(),
        leaf => Flat::from([(String::new(), leaf.clone())]),
    }
}

/// The value at a dotted key.
pub fn get<'a>(root: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.').try_fold(root, |cur, part| cur.get(part))
}

/// Sets `a.b.c = value`, creating tables on the way.
pub fn set(root: &mut toml::Value, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        let table = cur
            .as_table_mut()
            .ok_or_else(|| format!("`{}` is not a table", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            table.insert(p.to_string(), value);
            return Ok(());
        }
        cur = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    Ok(())
}

/// An integer or float as f64.
pub fn as_f64(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// The one equality of config values: numbers, integer or float, are equal
/// within a relative 1e-9 (so `2` = `2.0` and `1e-4` = `0.0001`, however
/// the file wrote them); arrays element by element; anything else exactly.
pub fn equal(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Array(x), toml::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
            _ => a == b,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> toml::Value {
        toml::Value::Table(toml::from_str(text).unwrap())
    }

    #[test]
    fn flatten_get_set_round_trip() {
        let mut v = value("seed = 1\n[model]\nd = 64\n[model.inner]\nx = [1, 2]\n");
        let f = flatten(&v);
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["model.d", "model.inner.x", "seed"]
        );
        assert_eq!(get(&v, "model.d"), Some(&toml::Value::Integer(64)));
        assert_eq!(get(&v, "model.e"), None);
        set(&mut v, "train.lr", toml::Value::Float(1e-3)).unwrap();
        assert_eq!(get(&v, "train.lr"), Some(&toml::Value::Float(1e-3)));
        let e = set(&mut v, "seed.x", toml::Value::Integer(1)).unwrap_err();
        assert!(e.contains("`seed` is not a table"), "{e}");
    }

    #[test]
    fn a_key_in_two_spellings_is_kept_twice() {
        let t: toml::Table = toml::from_str("\"model.d\" = [1]\nmodel.d = [2]\n").unwrap();
        let keys: Vec<String> = leaves(&t).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["model.d", "model.d"]);
    }

    #[test]
    fn numbers_are_equal_however_written() {
        let (i, f) = (toml::Value::Integer(2), toml::Value::Float(2.0));
        assert!(equal(&i, &f) && equal(&f, &i));
        assert!(equal(
            &toml::Value::Float(1e-4),
            &toml::Value::Float(0.0001)
        ));
        assert!(!equal(
            &toml::Value::Float(1e-4),
            &toml::Value::Float(1.001e-4)
        ));
        assert!(!equal(
            &toml::Value::Integer(2),
            &toml::Value::String("2".into())
        ));
        let arr =
            |v: Vec<i64>| toml::Value::Array(v.into_iter().map(toml::Value::Integer).collect());
        assert!(equal(&arr(vec![1, 2]), &arr(vec![1, 2])));
        assert!(!equal(&arr(vec![1, 2]), &arr(vec![1])));
    }
}
