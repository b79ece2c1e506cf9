//! The pieces of Net_θ (App. A.1): RMSNorm, non-causal multi-head attention
//! with RoPE, a SwiGLU feed-forward, the MLP-mixer token-mixing option, and
//! the transformer block in pre-norm (App. A.1) or post-norm (TRM) form.
use super::fused;
pub use crate::config::NormPlace;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Epsilon of every RMSNorm (docs/CHECKPOINTS.md).
pub const NORM_EPS: f64 = 1e-6;

/// RMSNorm (Zhang & Sennrich 2019); `weight = None` is TRM's scale-free form.
#[derive(Debug)]
pub struct RmsNorm {
    weight: Option<Tensor>,
    dim: i64,
    fused: bool,
}

impl RmsNorm {
    /// `fused`: csrc/fused.cpp's kernel (CPU only) instead of ATen's.
    pub fn new(vs: nn::Path, dim: i64, learned: bool, fused: bool) -> Self {
        let weight = learned.then(|| vs.ones("weight", &[dim]));
        RmsNorm { weight, dim, fused }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.fused && x.kind() == Kind::Float {
            fused::rms_norm(x, self.weight.as_ref(), NORM_EPS)
        } else {
            x.rms_norm([self.dim], self.weight.as_ref(), NORM_EPS)
        }
    }
}

/// Rotary position embedding tables (Su et al. 2024), half-split form:
/// the head dims are paired as (i, i + hd/2).
#[derive(Debug)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(seq_len: i64, head_dim: i64, device: tch::Device) -> Self {
        let half = head_dim / 2;
        let inv = Tensor::arange(half, (Kind::Float, device))
            .g_mul_scalar(-2.0 * (10000f64).ln() / head_dim as f64)
            .exp();
        let pos = Tensor::arange(seq_len, (Kind::Float, device));
        let ang = pos.unsqueeze(1) * inv.unsqueeze(0); // [L, hd/2]
        let ang = Tensor::cat(&[&ang, &ang], 1); // [L, hd]
        Rope {
            cos: ang.cos(),
            sin: ang.sin(),
        }
    }

    /// The (cos, sin) tables, each [L, hd] fp32.
    pub fn tables(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    /// Rotates `x` of shape [B, H, L, hd].
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let hd = x.size()[3];
        let x1 = x.narrow(3, 0, hd / 2);
        let x2 = x.narrow(3, hd / 2, hd / 2);
        let rotated = Tensor::cat(&[&x2.neg(), &x1], 3);
        let (cos, sin) = (self.cos.to_kind(x.kind()), self.sin.to_kind(x.kind()));
        x * cos + rotated * sin
    }
}

/// How attention is computed; both give softmax(q kᵀ / √d_h) v.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnKernel {
    /// tch's `scaled_dot_product_attention` (flash / memory-efficient kernels).
    Sdpa,
    /// Explicit batched matrix products with an fp32 softmax: on the CPU, for
    /// grids of ~100 tokens, 1.5x faster than the flash kernel in fp32 and
    /// ~5x in bf16 (training step, measured with torch 2.11).
    Math,
}

/// Non-causal multi-head self-attention.
#[derive(Debug)]
pub struct Attention {
    qkv: nn::Linear,
    out: nn::Linear,
    heads: i64,
    kernel: AttnKernel,
    fused: bool,
}

impl Attention {
    /// `fused`: the q/k/v split and RoPE in one kernel (CPU only).
    pub fn new(vs: nn::Path, d: i64, heads: i64, kernel: AttnKernel, fused: bool) -> Self {
        let cfg = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Attention {
            qkv: nn::linear(&vs / "qkv", d, 3 * d, cfg),
            out: nn::linear(&vs / "out", d, d, cfg),
            heads,
            kernel,
            fused,
        }
    }

    pub fn forward(&self, x: &Tensor, rope: Option<&Rope>) -> Tensor {
        let (b, l, d) = x.size3().expect("[B, L, d]");
        let hd = d / self.heads;
        let qkv = self.qkv.forward(x).view([b, l, 3, self.heads, hd]);
        let (q, k, v) = if self.fused && qkv.kind() == Kind::Float {
            fused::qkv_rope(&qkv, rope.map(Rope::tables))
        } else {
            let qkv = qkv.permute([2, 0, 3, 1, 4]);
            let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
            match rope {
                Some(rope) => (rope.apply(&q), rope.apply(&k), v),
                None => (q, k, v),
            }
        };
        let a = match self.kernel {
            AttnKernel::Sdpa => Tensor::scaled_dot_product_attention::<Tensor>(
                &q, &k, &v, None, 0.0, false, None, false,
            ),
            AttnKernel::Math => {
                let w = q.matmul(&k.transpose(-1, -2)) * (hd as f64).powf(-0.5);
                w.softmax(-1, Kind::Float).to_kind(v.kind()).matmul(&v)
            }
        };
        self.out.forward(&a.transpose(1, 2).reshape([b, l, d]))
    }
}

/// SwiGLU feed-forward (Shazeer 2020): W3 (silu(W1 x) * W2 x).
#[derive(Debug)]
pub struct SwiGlu {
    w12: nn::Linear,
    w3: nn::Linear,
    fused: bool,
}

impl SwiGlu {
    /// `fused`: the gate silu(g) · u in one kernel (CPU only).
    pub fn new(vs: nn::Path, d_in: i64, hidden: i64, fused: bool) -> Self {
        let cfg = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        SwiGlu {
            w12: nn::linear(&vs / "w12", d_in, 2 * hidden, cfg),
            w3: nn::linear(&vs / "w3", hidden, d_in, cfg),
            fused,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let gu = self.w12.forward(x);
        let gated = if self.fused && gu.kind() == Kind::Float {
            fused::swiglu_gate(&gu)
        } else {
            let gu = gu.chunk(2, -1);
            gu[0].silu() * &gu[1]
        };
        self.w3.forward(&gated)
    }
}

/// Which token mixer a block gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixerKind {
    Attention(AttnKernel),
    /// MLP-mixer: a SwiGLU across positions.
    Tokens,
}

/// The token mixer of a block: attention, or an MLP-mixer SwiGLU across
/// positions (App. A.1, TRM's Sudoku variant).
#[derive(Debug)]
enum Mixer {
    Attention(Attention),
    Tokens(SwiGlu),
}

/// One transformer (or mixer) block of Net_θ.
#[derive(Debug)]
pub struct Block {
    mixer: Mixer,
    ffn: SwiGlu,
    norm1: RmsNorm,
    norm2: RmsNorm,
    place: NormPlace,
}

impl Block {
    /// `seq_len` is needed only by the mixer (its weights span the positions);
    /// `fused`: csrc/fused.cpp's kernels for the norms, RoPE and gates (CPU).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vs: nn::Path,
        d: i64,
        heads: i64,
        ffn: i64,
        mixer: MixerKind,
        seq_len: i64,
        place: NormPlace,
        fused: bool,
    ) -> Self {
        let learned = place == NormPlace::Pre;
        let mixer = match mixer {
            MixerKind::Tokens => {
                Mixer::Tokens(SwiGlu::new(&vs / "mix", seq_len, 4 * seq_len, fused))
            }
            MixerKind::Attention(k) => {
                Mixer::Attention(Attention::new(&vs / "attn", d, heads, k, fused))
            }
        };
        Block {
            mixer,
            ffn: SwiGlu::new(&vs / "ffn", d, ffn, fused),
            norm1: RmsNorm::new(&vs / "norm1", d, learned, fused),
            norm2: RmsNorm::new(&vs / "norm2", d, learned, fused),
            place,
        }
    }

    fn mix(&self, x: &Tensor, rope: Option<&Rope>) -> Tensor {
        match &self.mixer {
            Mixer::Attention(a) => a.forward(x, rope),
            Mixer::Tokens(m) => m.forward(&x.transpose(1, 2)).transpose(1, 2),
        }
    }

    pub fn forward(&self, x: &Tensor, rope: Option<&Rope>) -> Tensor {
        match self.place {
            NormPlace::Pre => {
                let x = x + self.mix(&self.norm1.forward(x), rope);
                &x + self.ffn.forward(&self.norm2.forward(&x))
            }
            NormPlace::Post => {
                let x = self.norm1.forward(&(x + self.mix(x, rope)));
                self.norm2.forward(&(&x + self.ffn.forward(&x)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The explicit kernel computes what scaled_dot_product_attention does.
    #[test]
    fn math_attention_equals_sdpa() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let (mut att, x) = crate::seed::seeded(3, || {
            let att = Attention::new(vs.root(), 32, 4, AttnKernel::Sdpa, false);
            (
                att,
                Tensor::randn([3, 10, 32], (Kind::Float, tch::Device::Cpu)),
            )
        });
        let rope = Rope::new(10, 8, tch::Device::Cpu);
        let a = att.forward(&x, Some(&rope));
        att.kernel = AttnKernel::Math;
        let b = att.forward(&x, Some(&rope));
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max |sdpa - math| = {diff}");
    }
}
