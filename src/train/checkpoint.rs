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
use crate::config::RunConfig;
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
    let info = TaskInfo::from_config(cfg)?;
    let cells = match cfg.task.kind.as_str() {
        "maze" => "0 wall '#', 1 open ' ', 2 start 'S', 3 goal 'G', 4 path 'o'".to_string(),
        _ => {
            let side = cfg.task.box_size * cfg.task.box_size;
            format!("0 blank, 1..={side} the digits")
        }
    };
    let m = &cfg.model;
    let pairs = [
        ("format", FORMAT.to_string()),
        ("contents", what.to_string()),
        ("step", step.to_string()),
        ("variant", m.variant.clone()),
        ("task", cfg.task.kind.clone()),
        ("layout", cfg.task.layout.clone()),
        ("seq_len", info.seq_len().to_string()),
        ("vocab", info.vocab().to_string()),
        (
            "token_map",
            format!("PAD = {PAD}, MASK = {MASK}, cell code c -> token c + {FIRST_CELL}; cell codes: {cells}"),
        ),
        ("pos", m.pos.clone()),
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

/// The `__metadata__` of a safetensors file (empty when it has none).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e:?}", path.display()))?;
    Ok(meta
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default())
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

/// Writes tensors then `last.json`; removes tensor files older than the new one.
pub fn save(
    dir: &Path,
    meta_step: u64,
    adam_t: i64,
    cfg: &RunConfig,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let name = format!("step-{meta_step}.safetensors");
    let path = dir.join(&name);
    write_tensors(&path, tensors, &metadata(cfg, meta_step, "checkpoint")?)?;
    let meta = Meta {
        step: meta_step,
        adam_t,
        tensors: name.clone(),
        config: cfg.to_toml_string(),
    };
    write_atomic(&dir.join("last.json"), &serde_json::to_vec_pretty(&meta)?)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let f = entry.file_name().to_string_lossy().to_string();
        if f.starts_with("step-") && f.ends_with(".safetensors") && f != name {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
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

/// Reads the last checkpoint; `Ok(None)` when there is none.
pub fn load(dir: &Path) -> Result<Option<Loaded>> {
    let mp = meta_path(dir);
    let bytes = match std::fs::read(&mp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", mp.display())),
    };
    let meta: Meta = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a checkpoint meta file", mp.display()))?;
    let tp = dir.join(&meta.tensors);
    if !tp.exists() {
        bail!(
            "{}: names {} which does not exist",
            mp.display(),
            tp.display()
        );
    }
    let tensors = Tensor::read_safetensors(&tp)
        .with_context(|| format!("{}: cannot read checkpoint tensors", tp.display()))?
        .into_iter()
        .collect();
    Ok(Some(Loaded { meta, tensors }))
}
