//! The closed sets of choices of a run config, as types.
//!
//! Each enum is read from and written to TOML under the same names the
//! config files have always used (`model.variant = "trldm-ds"`), so no
//! consumer parses a string: a misspelt value is refused when the config is
//! read, with serde's message naming the key and the allowed values. The
//! enums carry what a choice implies (e.g. [`Variant::recursive`]).
use serde::{Deserialize, Serialize};

/// Declares a config choice: the enum, its TOML names, `ALL`, `as_str` and
/// `Display` (the TOML name, for messages and metadata).
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $var:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $var ),+
        }

        impl $name {
            /// Every choice, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The name used in config files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            /// Parses a config-file name (the same names serde reads).
            fn from_str(s: &str) -> Result<$name, String> {
                $name::ALL.iter().copied().find(|c| c.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = $name::ALL.iter().map(|c| format!("`{c}`")).collect();
                    format!("unknown variant `{s}`, expected one of {}", names.join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// `task.kind`: the puzzle family.
    Puzzle {
        /// Grid mazes, shortest path marked (Sec. 9.2).
        Maze = "maze",
        /// Sudoku (Sudoku-Extreme protocol, Sec. 9.1).
        Sudoku = "sudoku",
    }
}

choice! {
    /// `task.layout`: how question and answer become one token sequence.
    Layout {
        /// One token per cell: the question's cells to fill are the response.
        InPlace = "inplace",
        /// [p | r]: the question, then the whole answer grid.
        Concat = "concat",
    }
}

choice! {
    /// `model.variant`: which model of the paper's tables (Sec. 9.3).
    Variant {
        /// TR-LDM trained one-step with Eq. 3.
        Trldm = "trldm",
        /// TR-LDM with deep supervision over denoising steps (Algorithm 3).
        TrldmDs = "trldm-ds",
        /// Masked diffusion without recursion (LLaDA-style mask predictor).
        Mdm = "mdm",
        /// Direct prediction: one non-recursive pass, no masking schedule.
        Vanilla = "vanilla",
        /// TRM supervised: recursion and deep supervision, no diffusion.
        Trm = "trm",
    }
}

impl PosEncoding {
    /// Rotary embeddings inside attention.
    pub fn rope(self) -> bool {
        matches!(self, PosEncoding::Rope | PosEncoding::RopeLearned2d)
    }

    /// Learned row + column embeddings added to e(x).
    pub fn learned2d(self) -> bool {
        matches!(self, PosEncoding::Learned2d | PosEncoding::RopeLearned2d)
    }
}

impl Variant {
    /// Uses the (y, z) recursion of Algorithms 1-2.
    pub fn recursive(self) -> bool {
        matches!(self, Variant::Trldm | Variant::TrldmDs | Variant::Trm)
    }

    /// Is a masked diffusion model (trained on masks, sampled with Algorithm 4).
    pub fn diffusion(self) -> bool {
        matches!(self, Variant::Trldm | Variant::TrldmDs | Variant::Mdm)
    }

    /// Trained with deep supervision (Algorithm 3), hence with a trained
    /// halting head h_θ(y).
    pub fn deep_supervised(self) -> bool {
        matches!(self, Variant::TrldmDs | Variant::Trm)
    }
}

choice! {
    /// `model.block`: the token mixer of each block of Net_θ.
    BlockKind {
        /// Self-attention (App. A.1).
        Attention = "attention",
        /// MLP-mixer: a SwiGLU across positions (App. A.1, TRM's Sudoku net).
        Mixer = "mixer",
    }
}

choice! {
    /// `model.attn_kernel`: how attention is computed; all give
    /// softmax(q kᵀ / √d_h) v.
    AttnKernelChoice {
        /// `math` on the CPU up to 256 tokens, `sdpa` otherwise.
        Auto = "auto",
        /// tch's `scaled_dot_product_attention` (flash / memory-efficient kernels).
        Sdpa = "sdpa",
        /// Explicit batched matrix products with an fp32 softmax.
        Math = "math",
    }
}

choice! {
    /// `model.cpu_kernels`: how Net_θ's RMSNorms, RoPE and SwiGLU gate run on
    /// the CPU (on CUDA always ATen's).
    CpuKernels {
        /// csrc/fused.cpp: one pass forward and one backward each.
        Fused = "fused",
        /// ATen's compositions (src/model/block.rs), 5-15 passes each.
        Aten = "aten",
    }
}

choice! {
    /// `model.norm`: where the RMSNorms of a block sit.
    NormPlace {
        /// x + f(norm(x)) (App. A.1).
        Pre = "pre",
        /// norm(x + f(x)), scale-free RMSNorm (TRM).
        Post = "post",
    }
}

choice! {
    /// `model.pos`: position information.
    PosEncoding {
        /// Rotary embeddings inside attention.
        Rope = "rope",
        /// Learned row + column embeddings added to the input, instead of RoPE.
        Learned2d = "learned2d",
        /// RoPE inside attention and learned row + column embeddings added
        /// to the input: Sec. 9.5 augments the RoPE denoiser (App. A.1) with
        /// 2D embeddings (Table 5).
        RopeLearned2d = "rope+learned2d",
        /// None.
        None = "none",
    }
}

choice! {
    /// `sample.schedule`: mask-ratio schedule t_1 = 1 > t_2 > ... > t_N ≈ 0
    /// (also the commit schedule of Algorithm 3's supervision steps).
    Schedule {
        /// LLaDA: n // N per step, the first n % N steps one more.
        Linear = "linear",
        /// MaskGIT: masked after step s = floor(n · cos(π/2 · s/N)).
        Cosine = "cosine",
    }
}

choice! {
    /// `sample.remask`: which masked positions stay masked after a step.
    Remask {
        /// The lowest-confidence ones (Algorithm 4, line 10).
        LowConfidence = "low_confidence",
        /// Uniformly random ones (the random-remask baseline, Table 1).
        Random = "random",
    }
}

choice! {
    /// `train.ds_start`: where each minibatch's supervision trajectory of
    /// Algorithm 3 (`trldm-ds`) starts.
    DsStart {
        /// Every response position masked (Algorithm 3, line 3, as written).
        Masked = "masked",
        /// A fraction t ~ U(eps, 1] of the response masked and the rest
        /// revealed (Eq. 3's corruption); the supervision steps then go on
        /// from there with the model's own commits. The first step thus
        /// trains on Eq. 3's inputs (weighted, like every step of
        /// Algorithm 3, by the fraction actually masked rather than the
        /// drawn t).
        Random = "random",
    }
}

choice! {
    /// `train.ds_batches`: how deep supervision (`trldm-ds`, `trm`) walks
    /// its minibatches through the N_sup supervision steps.
    DsBatches {
        /// Algorithm 3 as written: each minibatch gets N_sup updates in a
        /// row (fewer with halting), then the next minibatch is drawn.
        Minibatch = "minibatch",
        /// TRM's carry (Jolicoeur-Martineau 2025, `pretrain.py`): one
        /// update per training step on a batch whose rows are each at
        /// their own supervision step; a row that halts or reaches N_sup
        /// takes a new puzzle at the next step while the others keep their
        /// (y, z) and committed tokens. Consecutive updates thus never
        /// share one minibatch.
        Carry = "carry",
    }
}

choice! {
    /// `model.state_norm`: how the recursive states are kept bounded over
    /// carried steps.
    ///
    /// Pre-norm Net_θ is h + Δ(h), so z ← Net(x + y + z) and y ← Net(y + z)
    /// add up: untrained, RMS(y) grows ~3.7x per denoising step at n = 2, and
    /// fp32 RMSNorm returns zeros after ~30 carried steps. `step` (the
    /// default) hands on RMSNorm(y), RMSNorm(z) (scale-free, as every block
    /// output of TRM's post-norm net is) at the end of each denoising step,
    /// so a carried state starts every step at RMS 1, like x, for any number
    /// of steps; within a step nothing changes, and neither do the logits
    /// (the readout norm is scale-free), so a model sampled from fresh states
    /// is the same model as with `none`. `update` normalises after every
    /// Net_θ call instead: bounded too, but it changes the computation, and
    /// one-step training learned less with it (docs/RECURSION.md).
    StateNorm {
        /// No bounding (trldm before 2026-12; the results committed before then).
        None = "none",
        /// (y, z) ← RMSNorm(y), RMSNorm(z) at the end of each denoising step.
        Step = "step",
        /// y, z ← RMSNorm(Net(·)) after every update of Algorithm 1.
        Update = "update",
    }
}

choice! {
    /// `model.state_init`: the (y, z) a denoising trajectory starts from.
    StateInit {
        /// Sec. 7.2: y = e([p, r]) (the embedded input), z = 0.
        Embed = "embed",
        /// TRM (Jolicoeur-Martineau 2025; docs/FACTS.md): y and z start as
        /// two fixed random vectors, broadcast over the positions and never
        /// trained, drawn from the run's seed.
        Fixed = "fixed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_toml() {
        #[derive(Serialize, Deserialize)]
        struct One {
            v: Variant,
        }
        for &v in Variant::ALL {
            let text = toml::to_string(&One { v }).unwrap();
            assert_eq!(text.trim(), format!("v = \"{}\"", v.as_str()));
            assert_eq!(toml::from_str::<One>(&text).unwrap().v, v);
        }
        assert_eq!(Remask::LowConfidence.to_string(), "low_confidence");
        assert_eq!(Variant::TrldmDs.to_string(), "trldm-ds");
        assert_eq!("learned2d".parse(), Ok(PosEncoding::Learned2d));
        assert!("Mdm".parse::<Variant>().unwrap_err().contains("`mdm`"));
        let e = toml::from_str::<One>("v = \"trldm_ds\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown variant `trldm_ds`"), "{e}");
        assert!(e.contains("`trldm-ds`"), "{e}");
    }

    #[test]
    fn variant_capabilities_match_the_paper() {
        let rec: Vec<_> = Variant::ALL.iter().filter(|v| v.recursive()).collect();
        assert_eq!(rec, [&Variant::Trldm, &Variant::TrldmDs, &Variant::Trm]);
        let diff: Vec<_> = Variant::ALL.iter().filter(|v| v.diffusion()).collect();
        assert_eq!(diff, [&Variant::Trldm, &Variant::TrldmDs, &Variant::Mdm]);
        let ds: Vec<_> = Variant::ALL
            .iter()
            .filter(|v| v.deep_supervised())
            .collect();
        assert_eq!(ds, [&Variant::TrldmDs, &Variant::Trm]);
    }
}
