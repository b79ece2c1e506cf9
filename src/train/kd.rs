//! Teachers for distillation (Sec. 5.5, Eq. 8): another trldm run (e.g. a
//! larger one-step masked-diffusion model) or a TorchScript module that maps
//! tokens [B, L] (int64) to logits [B, L, V].
use crate::config::RunConfig;
use crate::data::TaskInfo;
use crate::model::Model;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{nn::VarStore, CModule, Device, Tensor};

/// A frozen teacher p_φ(· | p, r_t).
pub enum Teacher {
    /// A trldm run folder: its model with its own recursion (EMA weights).
    Run { model: Box<Model>, _vs: VarStore },
    /// A TorchScript module: `forward(tokens) -> logits`.
    Script(CModule),
}

impl Teacher {
    /// Loads `train.kd_teacher` and checks that its vocabulary and sequence
    /// length are the student's.
    pub fn load(spec: &str, student: &TaskInfo, device: Device) -> Result<Teacher> {
        let path = Path::new(spec);
        let teacher = if path.is_dir() {
            let cfg = RunConfig::load(&path.join("config.toml")).with_context(|| {
                format!("train.kd_teacher = \"{spec}\": not a trldm run folder")
            })?;
            let info = TaskInfo::from_config(&cfg);
            if info.vocab() != student.vocab() || info.seq_len() != student.seq_len() {
                bail!(
                    "train.kd_teacher = \"{spec}\": the teacher's vocabulary/sequence ({} tokens, length {}) differs from the student's ({} tokens, length {})",
                    info.vocab(),
                    info.seq_len(),
                    student.vocab(),
                    student.seq_len()
                );
            }
            let crate::eval::Trained { vs, model, .. } =
                crate::eval::load_model(&cfg, &path.join("ckpt"), true, device)?;
            Teacher::Run {
                model: Box::new(model),
                _vs: vs,
            }
        } else if path.is_file() {
            let m = CModule::load_on_device(path, device).with_context(|| {
                format!("train.kd_teacher = \"{spec}\": not a TorchScript module")
            })?;
            Teacher::Script(m)
        } else {
            bail!("train.kd_teacher = \"{spec}\": no such run folder or TorchScript file");
        };
        // One probe call checks the output shape against the student's vocabulary.
        let probe = Tensor::ones([1, student.seq_len() as i64], (tch::Kind::Int64, device));
        let out = teacher.logits(&probe)?;
        let want = [1, student.seq_len() as i64, student.vocab() as i64];
        if out.size() != want {
            bail!(
                "train.kd_teacher = \"{spec}\": the teacher returns logits of shape {:?}, the student needs {:?} (vocabulary {})",
                out.size(),
                want,
                student.vocab()
            );
        }
        Ok(teacher)
    }

    /// Teacher logits for tokens [B, L], without gradients.
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| match self {
            Teacher::Run { model, .. } => Ok(model.forward(tokens, None).logits),
            Teacher::Script(m) => m
                .forward_ts(&[tokens])
                .context("TorchScript teacher forward"),
        })
    }
}
