//! No user input reaches a panic: random run configs and `--set` arguments,
//! built from every real key with values of every TOML type (extreme
//! numbers, NaN, infinities, negative, empty and unknown strings), are
//! either refused with an error or accepted as a config whose derived
//! quantities (sequence length, identity, FLOPs, warnings, task shape) can
//! be computed. The generator is checked to produce both outcomes.
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use trldm::config::{known_keys, RunConfig};

static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// A TOML value text of any type, often at the edges.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(2),
            Just(-1),
            Just(3),
            Just(16),
            Just(64),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(1_000_000_000),
            0i64..100_000,
        ]
        .prop_map(|v| v.to_string()),
        prop_oneof![
            Just("nan".to_string()),
            Just("inf".to_string()),
            Just("-inf".to_string()),
            Just("1e308".to_string()),
            Just("-0.0".to_string()),
            Just("1e-300".to_string()),
            (-2.0f64..2.0).prop_map(|f| format!("{f:?}")),
        ],
        prop_oneof![Just("true"), Just("false")].prop_map(String::from),
        prop_oneof![
            Just("\"\""),
            Just("\"trldm-ds\""),
            Just("\"mdm\""),
            Just("\"post\""),
            Just("\"learned2d\""),
            Just("\"none\""),
            Just("\"cosine\""),
            Just("\"random\""),
            Just("\"concat\""),
            Just("\"sudoku\""),
            Just("\"cuda:7\""),
            Just("\"cpu\""),
            Just("\"\\u0000x\""),
            Just("\"zzz\""),
        ]
        .prop_map(String::from),
        Just("[1, 2]".to_string()),
        Just("{ a = 1 }".to_string()),
    ]
}

/// Everything a command derives from an accepted config: none may panic.
fn derive_all(c: &RunConfig) {
    let _ = c.seq_len();
    let _ = c.identity();
    let _ = c.to_toml_string();
    let _ = c.trajectory_warning();
    let _ = trldm::flops::train_flops(c);
    let _ = trldm::flops::params(c);
    let info = trldm::data::TaskInfo::from_config(c);
    let _ = (info.vocab(), info.seq_len(), info.grid());
    let back = RunConfig::from_toml_str(&c.to_toml_string(), "round trip")
        .expect("an accepted config reads back");
    assert_eq!(
        &back, c,
        "config.toml does not read back as the same config"
    );
}

fn check(outcome: std::thread::Result<anyhow::Result<RunConfig>>, what: &str) {
    match outcome {
        Err(_) => panic!("{what}: panicked"),
        Ok(Err(e)) => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            assert!(!format!("{e:#}").is_empty());
        }
        Ok(Ok(c)) => {
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            if catch_unwind(AssertUnwindSafe(|| derive_all(&c))).is_err() {
                panic!("{what}: derived quantities panicked for {c:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random config files: up to 6 real keys (and sometimes a misspelt one).
    #[test]
    fn random_config_files_never_panic(
        picks in proptest::collection::vec((0usize..1000, value()), 0..6),
        typo in proptest::option::of(Just("model.dd = 1".to_string())),
    ) {
        let keys = known_keys();
        let (mut top, mut sections) = (String::new(), String::new());
        let mut used = std::collections::BTreeSet::new();
        for (i, v) in &picks {
            let key = &keys[i % keys.len()];
            if used.insert(key.clone()) {
                match key.split_once('.') {
                    Some((section, name)) => sections += &format!("[{section}]\n\"{name}\" = {v}\n"),
                    None => top += &format!("{key} = {v}\n"),
                }
            }
        }
        let mut text = top + &sections;
        if let Some(t) = &typo { text += &format!("[model]\n{}\n", t.trim_start_matches("model.")); }
        let outcome = catch_unwind(AssertUnwindSafe(|| RunConfig::from_toml_str(&text, "fuzz.toml")));
        check(outcome, &text);
    }

    /// Random `--set key=value` arguments, as typed on a command line.
    #[test]
    fn random_set_arguments_never_panic(
        picks in proptest::collection::vec((0usize..1000, value()), 1..4),
        raw in "[a-z_.=0-9\"-]{0,20}",
    ) {
        let keys = known_keys();
        let mut sets: Vec<String> = picks
            .iter()
            .map(|(i, v)| format!("{}={v}", keys[i % keys.len()]))
            .collect();
        sets.push(raw);
        let outcome = catch_unwind(AssertUnwindSafe(|| RunConfig::default().with_overrides(&sets)));
        check(outcome, &format!("{sets:?}"));
    }
}

/// The generators reach both outcomes (a fuzz test that only ever sees
/// errors, or only successes, checks little).
#[test]
fn the_generators_reach_accepted_and_refused_configs() {
    random_config_files_never_panic();
    random_set_arguments_never_panic();
    let (a, r) = (
        ACCEPTED.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
    );
    assert!(a > 50 && r > 50, "accepted {a}, refused {r}");
}
