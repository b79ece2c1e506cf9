//! Checkpoints: `<run>/ckpt/step-N.safetensors` (model, EMA and AdamW
//! moments) plus `<run>/ckpt/last.json` (step, Adam's step count, the
//! resolved config), both written atomically. `last.json` is written after
//! the tensors and names them, so it always points to a complete file; older
//! tensor files are removed after it moved on.
//!
//! Every safetensors file trldm writes (checkpoints, `trldm export`, logit
//! dumps) carries `__metadata__` ([`metadata`]): format version, resolved
//! config, token map, variant, layout, sequence length, step; so a file can
//! be read without its run folder (docs/CHECKPOINTS.md).
//!
//! Every random choice of a training step is derived from (seed, step)
//! (see `train::step_rng`), so the step is the whole RNG state.
use crate::config::{Puzzle, RunConfig};
use crate::data::{TaskInfo, FIRST_CELL, MASK, PAD};
use crate::util::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// `__metadata__["format"]` of the files this version writes.
pub const FORMAT: &str = "trldm-safetensors-1";

/// The `__metadata__` of a safetensors file written for the run `cfg`
/// (`what`: `checkpoint`, `export` or `logits`).
pub fn metadata(cfg: &RunConfig, step: u64, what: &str) -> Result<BTreeMap<String, String>> {
    let info = TaskInfo::from_config(cfg);
    let cells = match cfg.task.kind {
        Puzzle::Maze => "0 wall '#', 1 open ' ', 2 start 'S', 3 goal 'G', 4 path 'o'".to_string(),
        Puzzle::Sudoku => {
            let side = cfg.task.box_size * cfg.task.box_size;
            format!("0 blank, 1..={side} the digits")
        }
    };
    let m = &cfg.model;
    let pairs = [
        ("format", FORMAT.to_string()),
        ("contents", what.to_string()),
        ("step", step.to_string()),
        ("variant", m.variant.to_string()),
        ("task", cfg.task.kind.to_string()),
        ("layout", cfg.task.layout.to_string()),
        ("seq_len", info.seq_len().to_string()),
        ("vocab", info.vocab().to_string()),
        (
            "token_map",
            format!("PAD = {PAD}, MASK = {MASK}, cell code c -> token c + {FIRST_CELL}; cell codes: {cells}"),
        ),
        ("pos", m.pos.to_string()),
        (
            "rope_pairing",
            "half-split: head dims i and i + d_h/2 rotate together, theta_i = 10000^(-2i/d_h)".into(),
        ),
        ("norm", format!("{} RMSNorm, eps 1e-6", m.norm)),
        ("config_toml", cfg.to_toml_string()),
    ];
    Ok(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A CPU tensor as a safetensors view.
struct CpuView {
    bytes: Vec<u8>,
    shape: Vec<usize>,
    dtype: Dtype,
}

impl CpuView {
    fn new(name: &str, t: &Tensor) -> Result<CpuView> {
        let t = t.detach().to_device(tch::Device::Cpu).contiguous();
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Double => Dtype::F64,
            Kind::BFloat16 => Dtype::BF16,
            Kind::Half => Dtype::F16,
            Kind::Int64 => Dtype::I64,
            Kind::Int => Dtype::I32,
            Kind::Uint8 => Dtype::U8,
            Kind::Bool => Dtype::BOOL,
            k => bail!("{name}: cannot write a tensor of kind {k:?}"),
        };
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        let shape = t.size().iter().map(|&x| x as usize).collect();
        Ok(CpuView {
            bytes,
            shape,
            dtype,
        })
    }
}

impl View for &CpuView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` with `__metadata__` to `path`, atomically (temp file + rename).
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), CpuView::new(n, t)?)))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<(&str, &CpuView)> = views.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::tensor::serialize(refs, &Some(meta))
        .map_err(|e| anyhow!("{}: cannot serialize: {e:?}", path.display()))?;
    write_atomic(path, &bytes)
}

/// `last.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Optimizer steps done.
    pub step: u64,
    /// AdamW's update count (bias correction).
    pub adam_t: i64,
    /// The tensors file, relative to the checkpoint folder.
    pub tensors: String,
    /// The resolved config of the run that wrote it.
    pub config: String,
}

/// Writes tensors then `last.json`, then keeps the newest `keep` tensor
/// files of this run (by their metadata: same run identity) and removes its
/// older ones; files of other runs and files without trldm metadata are
/// never touched.
pub fn save(
    dir: &Path,
    meta_step: u64,
    adam_t: i64,
    cfg: &RunConfig,
    tensors: &[(String, Tensor)],
    keep: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let name = format!("step-{meta_step}.safetensors");
    let path = dir.join(&name);
    let mut md = metadata(cfg, meta_step, "checkpoint")?;
    md.insert("adam_t".into(), adam_t.to_string());
    md.insert("identity".into(), run_identity(cfg));
    write_tensors(&path, tensors, &md)?;
    let meta = Meta {
        step: meta_step,
        adam_t,
        tensors: name.clone(),
        config: cfg.to_toml_string(),
    };
    write_atomic(&dir.join("last.json"), &serde_json::to_vec_pretty(&meta)?)?;
    // Older files of this run (never the one just written; files of later
    // steps, left by a resume that fell back past them, are not counted).
    let identity = run_identity(cfg);
    let older: Vec<(u64, PathBuf)> = step_files(dir)
        .into_iter()
        .filter(|(n, p)| {
            *n < meta_step && read_metadata(p).is_ok_and(|m| m.get("identity") == Some(&identity))
        })
        .collect();
    for (_, old) in older.iter().skip(keep.max(1) - 1) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// What makes checkpoints the same run's: the model, the data and the
/// seed (the keys `--resume` refuses to change); training and sampling
/// settings may change on resume.
pub fn run_identity(cfg: &RunConfig) -> String {
    RunConfig {
        model: cfg.model.clone(),
        task: cfg.task.clone(),
        seed: cfg.seed,
        ..RunConfig::default()
    }
    .identity()
}

/// `step-N.safetensors` files of a folder, newest (largest N) first.
pub fn step_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let f = e.file_name().to_string_lossy().to_string();
                    let n = f.strip_prefix("step-")?.strip_suffix(".safetensors")?;
                    Some((n.parse().ok()?, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out
}

/// The `__metadata__` of a safetensors file, read from its header alone
/// (the tensors are not read; empty when it has none).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .with_context(|| format!("{}: shorter than a safetensors header", path.display()))?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 {
        bail!(
            "{}: header of {n} bytes: not a safetensors file",
            path.display()
        );
    }
    let mut head = vec![0u8; n as usize];
    f.read_exact(&mut head)
        .with_context(|| format!("{}: truncated header", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&head)
        .with_context(|| format!("{}: header is not JSON", path.display()))?;
    Ok(v.get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// A loaded checkpoint.
pub struct Loaded {
    pub meta: Meta,
    pub tensors: HashMap<String, Tensor>,
}

impl Loaded {
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.tensors.get(name).map(|t| t.shallow_clone())
    }
}

impl Loaded {
    /// Copies the group `prefix/` (`model`, `ema`) into `params` (name,
    /// tensor) under no_grad, after checking that every tensor exists and has
    /// the parameter's shape; the error names the tensor and both shapes.
    pub fn load_into(&self, prefix: &str, params: &mut [(String, Tensor)]) -> Result<()> {
        for (name, p) in params.iter() {
            let key = format!("{prefix}/{name}");
            let src = self.tensors.get(&key).ok_or_else(|| {
                anyhow!("checkpoint lacks {key}: was it written by another model config?")
            })?;
            if src.size() != p.size() {
                bail!(
                    "checkpoint {key} has shape {:?} but the model of this config has {:?} \
                     (model.* keys differ from the run that wrote it?)",
                    src.size(),
                    p.size()
                );
            }
        }
        tch::no_grad(|| {
            for (name, p) in params.iter_mut() {
                p.copy_(&self.tensors[&format!("{prefix}/{name}")]);
            }
        });
        Ok(())
    }

    /// Does the checkpoint hold the group `prefix/`?
    pub fn has_group(&self, prefix: &str) -> bool {
        let p = format!("{prefix}/");
        self.tensors.keys().any(|k| k.starts_with(&p))
    }
}

pub fn meta_path(dir: &Path) -> PathBuf {
    dir.join("last.json")
}

/// Reads the newest readable checkpoint; `Ok(None)` when there is none.
///
/// The file `last.json` names comes first; when `last.json` is missing or
/// unreadable, or its tensor file is, the `step-N.safetensors` files are
/// tried from the newest down (step, Adam's count and config from their
/// metadata), each fallback said on stderr. A folder whose every candidate
/// is unreadable is an error listing why.
pub fn load(dir: &Path) -> Result<Option<Loaded>> {
    let mp = meta_path(dir);
    let mut problems: Vec<String> = Vec::new();
    let named: Option<Meta> = match std::fs::read(&mp) {
        Ok(b) => match serde_json::from_slice::<Meta>(&b) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!(
                    "{}: not a checkpoint meta file ({e})",
                    mp.display()
                ));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", mp.display())),
    };
    let mut candidates: Vec<(PathBuf, Option<Meta>)> = Vec::new();
    if let Some(m) = &named {
        candidates.push((dir.join(&m.tensors), Some(m.clone())));
    }
    for (_, p) in step_files(dir) {
        if !candidates.iter().any(|(c, _)| c == &p) {
            candidates.push((p, None));
        }
    }
    for (path, meta) in candidates {
        let read = Tensor::read_safetensors(&path)
            .map_err(|e| anyhow!("{e}"))
            .and_then(|t| {
                let meta = match &meta {
                    Some(m) => m.clone(),
                    None => meta_from_file(&path)?,
                };
                Ok((t, meta))
            });
        match read {
            Ok((tensors, meta)) => {
                if !problems.is_empty() {
                    crate::say!(
                        "trldm: checkpoint: {}; using {} (step {})",
                        problems.join("; "),
                        path.display(),
                        meta.step
                    );
                }
                return Ok(Some(Loaded {
                    meta,
                    tensors: tensors.into_iter().collect(),
                }));
            }
            Err(e) => problems.push(format!("{} unreadable: {e:#}", path.display())),
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    bail!(
        "{}: no readable checkpoint: {}",
        dir.display(),
        problems.join("; ")
    )
}

/// [`Meta`] of a tensor file found without `last.json`: from its metadata
/// (trldm >= 2026-12), else step from the file name and Adam's count = step.
fn meta_from_file(path: &Path) -> Result<Meta> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let md = read_metadata(path)?;
    let from_name = name
        .strip_prefix("step-")
        .and_then(|n| n.strip_suffix(".safetensors"))
        .and_then(|n| n.parse::<u64>().ok());
    let step = md
        .get("step")
        .and_then(|v| v.parse().ok())
        .or(from_name)
        .ok_or_else(|| anyhow!("{}: no step in its name or metadata", path.display()))?;
    Ok(Meta {
        step,
        adam_t: md
            .get("adam_t")
            .and_then(|v| v.parse().ok())
            .unwrap_or(step as i64),
        tensors: name,
        config: md.get("config_toml").cloned().unwrap_or_default(),
    })
}
