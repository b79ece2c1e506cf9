//! Grid expansion: `[base]` × (cartesian product of `[grid]` minus
//! `[[exclude]]`, plus `[[include]]`), each point × `seeds`, resolved to a
//! checked `RunConfig` with a stable id.
//!
//! Order: grid keys sorted, the last key varies fastest, seeds innermost;
//! includes follow the grid points. Excludes apply to grid points only (an
//! include is explicit). The run id hashes the resolved config's settings
//! that differ from the defaults ([`RunConfig::identity`]), sorted by key, so
//! it depends neither on the order of keys in the sweep file nor on keys
//! added to the config types later (with a default).
use super::spec::SweepSpec;
use crate::config::RunConfig;
use crate::dotted;
use anyhow::{anyhow, bail, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// First 10 hex characters of sha256 of the config's identity.
    pub id: String,
    /// The resolved, validated config.
    pub config: RunConfig,
    /// Its TOML (what `config.toml` holds).
    pub toml: String,
    /// The overrides that made this point (dotted key -> value), seed included.
    pub point: BTreeMap<String, toml::Value>,
}

/// Run id of a config: sha256 of [`RunConfig::identity`], 10 hex characters.
pub fn run_id(config: &RunConfig) -> String {
    hex10(&config.identity())
}

/// First 10 hex characters of sha256(text).
pub fn hex10(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(10);
    for b in digest.iter().take(5) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Cartesian product of `keys` (in map order; the last varies fastest).
pub fn product(grid: &BTreeMap<String, Vec<toml::Value>>) -> Vec<BTreeMap<String, toml::Value>> {
    let mut points = vec![BTreeMap::new()];
    for (key, values) in grid {
        let mut next = Vec::with_capacity(points.len() * values.len());
        for p in &points {
            for v in values {
                let mut q = p.clone();
                q.insert(key.clone(), v.clone());
                next.push(q);
            }
        }
        points = next;
    }
    points
}

/// Short text of a point for messages: `model.d=64 seed=1`.
pub fn describe(point: &BTreeMap<String, toml::Value>) -> String {
    if point.is_empty() {
        return "(base)".into();
    }
    point
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expands a sweep into its runs (checked: types, validation, duplicates).
/// The most runs one sweep may expand to. Beyond it the plan alone takes
/// minutes and gigabytes (and no cluster queue takes it): such a file is a
/// mistake, or several sweeps.
pub const MAX_RUNS: u64 = 100_000;

/// The number of runs a sweep expands to before `[[exclude]]` (an upper
/// bound), computed without expanding it.
pub fn count_upper_bound(spec: &SweepSpec) -> u128 {
    let points = |g: &BTreeMap<String, Vec<toml::Value>>| {
        g.values()
            .fold(1u128, |n, v| n.saturating_mul(v.len() as u128))
    };
    let grid = if spec.grid.is_empty() && !spec.include.is_empty() {
        0
    } else {
        points(&spec.grid)
    };
    let include = spec
        .include
        .iter()
        .map(points)
        .fold(0u128, u128::saturating_add);
    let seeds = spec.seeds.as_ref().map_or(1, |s| s.len() as u128);
    grid.saturating_add(include).saturating_mul(seeds)
}

pub fn expand(spec: &SweepSpec) -> Result<Vec<PlannedRun>> {
    let origin = &spec.origin;
    let n = count_upper_bound(spec);
    if n > MAX_RUNS as u128 {
        let lists: Vec<String> = spec
            .grid
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.len()))
            .collect();
        bail!(
            "{origin}: the sweep expands to {n} runs (grid lists {}; {} seeds; {} includes), \
             more than the {MAX_RUNS} one sweep may hold: shorten the lists or split the sweep",
            lists.join(", "),
            spec.seeds.as_ref().map_or(1, |s| s.len()),
            spec.include.len()
        );
    }
    if spec.grid.is_empty() && spec.include.is_empty() && spec.seeds.is_none() {
        bail!(
            "{origin}: the sweep is empty: add `[grid]` keys with lists of values (e.g. `\"model.n_rec\" = [1, 2]`), `[[include]]` points or `seeds`"
        );
    }
    let mut points: Vec<BTreeMap<String, toml::Value>> = Vec::new();
    let grid_points = if spec.grid.is_empty() && !spec.include.is_empty() {
        Vec::new()
    } else {
        product(&spec.grid)
    };
    let n_grid = grid_points.len();
    // Resolve the base once: excludes compare against resolved values.
    let base_value = spec.base.clone();
    let base_cfg = RunConfig::from_value(base_value.clone(), &format!("{origin}: [base]"))?;
    let base_resolved =
        toml::Value::try_from(&base_cfg).map_err(|e| anyhow!("{origin}: [base]: {e}"))?;
    for p in grid_points {
        if !excluded(&p, &base_resolved, &spec.exclude) {
            points.push(p);
        }
    }
    if n_grid > 0 && points.is_empty() && spec.include.is_empty() {
        bail!("{origin}: every one of the {n_grid} grid points is excluded by `[[exclude]]`");
    }
    for inc in &spec.include {
        points.extend(product(inc));
    }
    // Seeds innermost.
    let seeded: Vec<BTreeMap<String, toml::Value>> = match &spec.seeds {
        None => points,
        Some(seeds) => {
            let mut out = Vec::with_capacity(points.len() * seeds.len());
            for p in points {
                if p.contains_key("seed") {
                    out.push(p);
                    continue;
                }
                for s in seeds {
                    let mut q = p.clone();
                    q.insert("seed".into(), toml::Value::Integer(*s as i64));
                    out.push(q);
                }
            }
            out
        }
    };
    let runs = resolve_all(spec, &base_value, seeded)?;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(runs.len());
    for (i, r) in runs.iter().enumerate() {
        if let Some(j) = seen.insert(&r.id, i) {
            bail!(
                "{origin}: duplicate run {}: point #{} ({}) and point #{} ({}) resolve to the same config; remove one (e.g. a grid value equal to the base, or an include that repeats a grid point)",
                r.id,
                j + 1,
                describe(&runs[j].point),
                i + 1,
                describe(&r.point)
            );
        }
    }
    Ok(runs)
}

/// Builds every point's config; splits the work over the available cores.
fn resolve_all(
    spec: &SweepSpec,
    base: &toml::Value,
    points: Vec<BTreeMap<String, toml::Value>>,
) -> Result<Vec<PlannedRun>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let origin = spec.origin.as_str();
    if threads <= 1 || points.len() < 256 {
        return points
            .into_iter()
            .enumerate()
            .map(|(i, p)| resolve(origin, base, i, p))
            .collect();
    }
    let chunk = points.len().div_ceil(threads);
    let mut indexed: Vec<(usize, BTreeMap<String, toml::Value>)> =
        points.into_iter().enumerate().collect();
    let mut parts = Vec::new();
    while !indexed.is_empty() {
        let rest = indexed.split_off(indexed.len().min(chunk));
        parts.push(std::mem::replace(&mut indexed, rest));
    }
    let results: Vec<Result<Vec<PlannedRun>>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    part.into_iter()
                        .map(|(i, p)| resolve(origin, base, i, p))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("grid expansion panicked")))
            })
            .collect()
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

fn resolve(
    origin: &str,
    base: &toml::Value,
    i: usize,
    point: BTreeMap<String, toml::Value>,
) -> Result<PlannedRun> {
    let mut v = base.clone();
    let place = format!("{origin}: point #{} ({})", i + 1, describe(&point));
    for (k, val) in &point {
        dotted::set(&mut v, k, val.clone()).map_err(|e| anyhow!("{place}: {e}"))?;
    }
    let config = RunConfig::from_value(v, &place)?;
    let toml = config.to_toml_string();
    Ok(PlannedRun {
        id: run_id(&config),
        config,
        toml,
        point,
    })
}

/// True when some exclude entry matches the point (every key of the entry
/// equals one of its listed values; keys outside the point use the base).
fn excluded(
    point: &BTreeMap<String, toml::Value>,
    base: &toml::Value,
    exclude: &[BTreeMap<String, Vec<toml::Value>>],
) -> bool {
    exclude.iter().any(|entry| {
        entry.iter().all(|(k, accepted)| {
            let actual = point.get(k).or_else(|| dotted::get(base, k));
            actual.is_some_and(|a| accepted.iter().any(|x| dotted::equal(a, x)))
        })
    })
}
