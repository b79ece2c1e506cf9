//! Checkpoints: `<run>/ckpt/step-N.safetensors` (model, EMA and AdamW
//! moments) plus `<run>/ckpt/last.json` (step, Adam's step count, the
//! resolved config), both written atomically. `last.json` is written after
//! the tensors and names them, so it always points to a complete file; older
//! tensor files are removed after it moved on.
//!
//! Every random choice of a training step is derived from (seed, step)
//! (see `train::step_rng`), so the step is the whole RNG state.
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

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
    config: &str,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let name = format!("step-{meta_step}.safetensors");
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    Tensor::write_safetensors(&cpu, &tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot rename", path.display()))?;
    let meta = Meta {
        step: meta_step,
        adam_t,
        tensors: name.clone(),
        config: config.to_string(),
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
