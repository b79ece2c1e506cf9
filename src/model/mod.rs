//! The TR-LDM mask predictor (Sec. 5.2): token embedding e(·), the tiny
//! network Net_θ reused recursively on an answer state y and a reasoning
//! state z (Algorithm 1), deep recursion (Algorithm 2), the output head W_o
//! and the halting head h_θ(y) (Sec. 5.4). The baselines of Sec. 9.3 are the
//! same parts wired without recursion (`mdm`, `vanilla`).
pub mod block;
pub mod fused;

pub use crate::config::Variant;
use crate::config::{
    AttnKernelChoice, BlockKind, CpuKernels, ModelConfig, RunConfig, StateInit, StateNorm,
};
use crate::data::TaskInfo;
use anyhow::{anyhow, bail, Result};
use block::{AttnKernel, Block, MixerKind, NormPlace, RmsNorm, Rope};
use tch::nn::{self, Module};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// The shape of the data the model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub vocab: i64,
    pub seq_len: i64,
    /// Grid height and width: learned 2D positions use (p mod H·W) / W, (p mod H·W) % W.
    pub height: i64,
    pub width: i64,
}

/// The recursive states of Sec. 5.2, each [B, L, d].
#[derive(Debug)]
pub struct State {
    pub y: Tensor,
    pub z: Tensor,
}

impl State {
    /// Cuts the graph between denoising steps (Algorithm 3, line 15).
    pub fn detach(&self) -> State {
        State {
            y: self.y.detach(),
            z: self.z.detach(),
        }
    }
}

/// One denoising step's output.
#[derive(Debug)]
pub struct Output {
    /// [B, L, V] token logits ℓ = W_o y.
    pub logits: Tensor,
    /// [B] halting logit; h_θ(y) = sigmoid(halt_logit).
    pub halt_logit: Tensor,
    pub state: State,
}

/// Embedding, Net_θ, heads.
#[derive(Debug)]
pub struct Model {
    pub variant: Variant,
    pub shape: DataShape,
    d: i64,
    n_rec: usize,
    t_cycles: usize,
    use_y: bool,
    use_z: bool,
    state_norm: StateNorm,
    emb: nn::Embedding,
    pos2d: Option<(Tensor, Tensor, Tensor, Tensor)>,
    blocks: Vec<Block>,
    rope: Option<Rope>,
    norm_out: Option<RmsNorm>,
    head: nn::Linear,
    halt: nn::Linear,
    /// TRM's fixed initial (y, z), each [1, 1, d] (`model.state_init = "fixed"`).
    fixed_start: Option<(Tensor, Tensor)>,
}

impl Model {
    pub fn new(vs: &nn::Path, cfg: &ModelConfig, shape: DataShape) -> Result<Model> {
        let variant = cfg.variant;
        let d = cfg.d as i64;
        let heads = cfg.heads as i64;
        let ffn = if cfg.ffn == 0 { 4 * d } else { cfg.ffn as i64 };
        let place = cfg.norm;
        let device = vs.device();
        let mixer = match cfg.block {
            BlockKind::Mixer => MixerKind::Tokens,
            BlockKind::Attention => {
                MixerKind::Attention(attn_kernel(cfg.attn_kernel, device, shape.seq_len))
            }
        };
        let fused =
            device == Device::Cpu && cfg.cpu_kernels == CpuKernels::Fused && fused::available();
        let blocks = (0..cfg.layers)
            .map(|i| {
                let vs = vs / "net" / i;
                Block::new(vs, d, heads, ffn, mixer, shape.seq_len, place, fused)
            })
            .collect();
        let rope = cfg
            .pos
            .rope()
            .then(|| Rope::new(shape.seq_len, d / heads, device));
        let pos2d = cfg.pos.learned2d().then(|| {
            let p = vs / "pos2d";
            let rows = p.randn("row", &[shape.height, d], 0.0, 0.02);
            let cols = p.randn("col", &[shape.width, d], 0.0, 0.02);
            let cell = Tensor::arange(shape.seq_len, (Kind::Int64, device))
                .remainder(shape.height * shape.width);
            let (ri, ci) = (
                cell.divide_scalar_mode(shape.width, "floor"),
                cell.remainder(shape.width),
            );
            (rows, cols, ri, ci)
        });
        let emb = nn::embedding(vs / "emb", shape.vocab, d, Default::default());
        let nocfg = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let head = nn::linear(vs / "head", d, shape.vocab, nocfg);
        // TRM's halting head init: weight 0, bias -5 (docs/FACTS.md, "Tiny Recursive Models").
        let halt = nn::linear(
            vs / "halt",
            d,
            1,
            nn::LinearConfig {
                ws_init: nn::Init::Const(0.0),
                bs_init: Some(nn::Init::Const(-5.0)),
                bias: true,
            },
        );
        let norm_out =
            (place == NormPlace::Pre).then(|| RmsNorm::new(vs / "norm_out", d, true, fused));
        // Drawn after every parameter, so that the weights of a seed do not
        // depend on this option. Not variables: they are never trained, and
        // the seed redraws them when a checkpoint is loaded.
        let fixed_start = (cfg.state_init == StateInit::Fixed).then(|| {
            (
                unit_truncated_normal(d, device),
                unit_truncated_normal(d, device),
            )
        });
        Ok(Model {
            variant,
            shape,
            d,
            n_rec: cfg.n_rec,
            t_cycles: cfg.t_cycles,
            use_y: cfg.use_y,
            use_z: cfg.use_z,
            state_norm: cfg.state_norm,
            emb,
            pos2d,
            blocks,
            rope,
            norm_out,
            head,
            halt,
            fixed_start,
        })
    }

    /// TRM's fixed initial (y, z), each [1, 1, d], when `model.state_init =
    /// "fixed"` (they are not variables of the var store).
    pub fn fixed_start(&self) -> Option<(&Tensor, &Tensor)> {
        self.fixed_start.as_ref().map(|(y, z)| (y, z))
    }

    pub fn device(&self) -> Device {
        self.emb.ws.device()
    }

    /// x = e([p, r_t]) (+ learned 2D positions, Sec. 9.5).
    pub fn embed(&self, tokens: &Tensor) -> Tensor {
        let x = self.emb.forward(tokens);
        match &self.pos2d {
            Some((rows, cols, ri, ci)) => x + rows.index_select(0, ri) + cols.index_select(0, ci),
            None => x,
        }
    }

    /// The state a trajectory starts from: Sec. 7.2's y = e([p, r]) = x,
    /// z = 0, or TRM's fixed vectors broadcast over the positions
    /// (`model.state_init`).
    pub fn init_state(&self, x: &Tensor) -> State {
        match &self.fixed_start {
            None => State {
                y: x.shallow_clone(),
                z: x.zeros_like(),
            },
            Some((y0, z0)) => {
                let zero = x.zeros_like();
                State {
                    y: &zero + y0,
                    z: zero + z0,
                }
            }
        }
    }

    /// A carried state with the rows `rows` [B] (bool) started afresh
    /// ([`Model::init_state`] of `tokens`): the rows of a TRM carry batch
    /// that took a new puzzle (`train.ds_batches = "carry"`).
    pub fn reset_rows(&self, tokens: &Tensor, state: State, rows: &Tensor) -> State {
        let fresh = self.init_state(&self.embed(tokens));
        let r = rows.view([-1, 1, 1]);
        State {
            y: fresh.y.where_self(&r, &state.y),
            z: fresh.z.where_self(&r, &state.z),
        }
    }

    /// Net_θ: the stack of blocks.
    pub fn net(&self, h: &Tensor) -> Tensor {
        let mut h = h.shallow_clone();
        for b in &self.blocks {
            h = b.forward(&h, self.rope.as_ref());
        }
        h
    }

    /// Algorithm 1 without the readout: n latent updates z = Net(x + y + z)
    /// (Eq. 4), then y = Net(y + z) (Eq. 5).
    ///
    /// Ablations (Sec. 9.4): without z, the latent update sees no previous
    /// z, so its n repeats compute the same value and one suffices; without
    /// y, z = Net(x + z) and the answer is decoded through y = Net(z), which
    /// is never fed back.
    pub fn core(&self, x: &Tensor, s: &State) -> State {
        if !self.use_z {
            let z = self.update(&(x + &s.y));
            let y = self.update(&(&s.y + &z));
            return State { y, z };
        }
        let mut z = s.z.shallow_clone();
        let y_in = self.use_y.then_some(&s.y);
        for _ in 0..self.n_rec {
            z = match y_in {
                Some(y) => self.update(&(x + y + &z)),
                None => self.update(&(x + &z)),
            };
        }
        let y = match y_in {
            Some(y) => self.update(&(y + &z)),
            None => self.update(&z),
        };
        State { y, z }
    }

    /// One state update: Net_θ (normalised with `model.state_norm = "update"`).
    fn update(&self, h: &Tensor) -> Tensor {
        let out = self.net(h);
        match self.state_norm {
            StateNorm::Update => self.scale_free(&out),
            StateNorm::None | StateNorm::Step => out,
        }
    }

    /// Scale-free RMSNorm over the model width.
    fn scale_free(&self, h: &Tensor) -> Tensor {
        h.rms_norm([self.d], None::<&Tensor>, block::NORM_EPS)
    }

    /// Algorithm 2: T-1 cycles without gradients, then one with gradients.
    pub fn deep_recursion(&self, x: &Tensor, s: State) -> State {
        let mut s = s;
        if self.t_cycles > 1 {
            s = tch::no_grad(|| {
                let mut s = s;
                for _ in 0..self.t_cycles - 1 {
                    s = self.core(x, &s);
                }
                s.detach()
            });
        }
        self.core(x, &s)
    }

    /// ℓ = W_o y (after the output norm) and the halting logit of h_θ(y).
    pub fn readout(&self, y: &Tensor) -> (Tensor, Tensor) {
        let h = match &self.norm_out {
            Some(n) => n.forward(y),
            None => y.shallow_clone(),
        };
        let halt = self
            .halt
            .forward(&h.mean_dim(1, false, h.kind()))
            .squeeze_dim(-1);
        (self.head.forward(&h), halt)
    }

    /// One denoising step from tokens: embed, recurse from `state` (or from
    /// the Sec. 7.2 initialisation), read out. Non-recursive variants compute
    /// y = Net(x) and carry no state.
    pub fn forward(&self, tokens: &Tensor, state: Option<State>) -> Output {
        let x = self.embed(tokens);
        let state = if self.variant.recursive() {
            let s = state.unwrap_or_else(|| self.init_state(&x));
            let s = self.deep_recursion(&x, s);
            match self.state_norm {
                // The state handed on to the next denoising step is bounded.
                StateNorm::Step => State {
                    y: self.scale_free(&s.y),
                    z: self.scale_free(&s.z),
                },
                StateNorm::None | StateNorm::Update => s,
            }
        } else {
            State {
                y: self.net(&x),
                z: x.zeros_like(),
            }
        };
        let (logits, halt_logit) = self.readout(&state.y);
        Output {
            logits,
            halt_logit,
            state,
        }
    }

    /// Net applications per denoising step (forward), for FLOP estimates.
    pub fn net_calls(&self) -> usize {
        if self.variant.recursive() {
            (self.n_rec + 1) * self.t_cycles
        } else {
            1
        }
    }

    pub fn width(&self) -> i64 {
        self.d
    }
}

/// d draws of N(0, 1) truncated to [-2, 2] and scaled to a standard
/// deviation of 1, as [1, 1, d]: TRM's `trunc_normal_init_(std = 1)` for its
/// initial states (the truncated standard normal has standard deviation
/// 0.879626, so the draws are divided by it). From libtorch's generator, so
/// [`build`] makes them a function of the seed.
fn unit_truncated_normal(d: i64, device: Device) -> Tensor {
    let mut t = Tensor::randn([d], (Kind::Float, device));
    loop {
        let outside = t.abs().gt(2.0);
        if outside.sum(Kind::Int64).int64_value(&[]) == 0 {
            break;
        }
        t = t.randn_like().where_self(&outside, &t);
    }
    (t / 0.879_626).view([1, 1, d])
}

/// Builds the model of a config on `device`, initialised from the run's seed.
pub fn build(cfg: &RunConfig, info: &TaskInfo, device: Device) -> Result<(VarStore, Model)> {
    let vs = VarStore::new(device);
    let (h, w) = info.grid();
    let shape = DataShape {
        vocab: info.vocab() as i64,
        seq_len: info.seq_len() as i64,
        height: h as i64,
        width: w as i64,
    };
    check_memory(cfg, info, device, 1, "the weights")?;
    // libtorch panics when an allocation fails or a size overflows.
    let model = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::seed::seeded(cfg.seed as i64, || {
            Model::new(&vs.root(), &cfg.model, shape)
        })
    }))
    .map_err(|_| {
        anyhow!(
            "cannot build the model (model.d = {}, model.layers = {}, model.ffn = {}) on {device:?}: libtorch could not allocate it (see its message above)",
            cfg.model.d,
            cfg.model.layers,
            cfg.model.ffn
        )
    })??;
    Ok((vs, model))
}

/// Refuses a model of which `copies` fp32 copies of every parameter (`what`
/// they are: 1 to evaluate; 5 to train: weights, gradients, two AdamW
/// moments, EMA) cannot fit in the memory this machine has available (on
/// the CPU; a GPU's memory is left to libtorch, whose failure
/// [`build`] turns into an error).
pub fn check_memory(
    cfg: &RunConfig,
    info: &TaskInfo,
    device: Device,
    copies: usize,
    what: &str,
) -> Result<()> {
    let d = cfg.model.d as f64;
    let params = crate::flops::params(cfg) + (info.vocab() as f64 + 1.0) * d * 2.0;
    let bytes = params * 4.0 * copies as f64;
    if !bytes.is_finite() || bytes > 1e15 {
        bail!(
            "model.d = {}, model.layers = {}: {params:.3e} parameters is beyond any machine",
            cfg.model.d,
            cfg.model.layers
        );
    }
    if device == Device::Cpu {
        if let Some(avail) = crate::util::mem_available() {
            if bytes > avail as f64 {
                bail!(
                    "model.d = {}, model.layers = {}: {params:.3e} parameters need about {:.1} GiB \
                     ({what}) but this machine has {:.1} GiB available",
                    cfg.model.d,
                    cfg.model.layers,
                    bytes / (1u64 << 30) as f64,
                    avail as f64 / (1u64 << 30) as f64
                );
            }
        }
    }
    Ok(())
}

/// `model.attn_kernel`: `auto` takes the explicit kernel on the CPU for
/// sequences up to 256 tokens (its [B, H, L, L] scores stay small) and sdpa
/// elsewhere.
fn attn_kernel(choice: AttnKernelChoice, device: Device, seq_len: i64) -> AttnKernel {
    match choice {
        AttnKernelChoice::Sdpa => AttnKernel::Sdpa,
        AttnKernelChoice::Math => AttnKernel::Math,
        AttnKernelChoice::Auto if device == Device::Cpu && seq_len <= 256 => AttnKernel::Math,
        AttnKernelChoice::Auto => AttnKernel::Sdpa,
    }
}

/// Root mean square of all elements, in fp32 (state sizes in traces and tests).
pub fn rms(t: &Tensor) -> f64 {
    t.to_kind(Kind::Float)
        .square()
        .mean(Kind::Float)
        .sqrt()
        .double_value(&[])
}

/// Parameters of a var store (all, and without the embedding/position tables).
pub fn count_params(vs: &nn::VarStore) -> (i64, i64) {
    let mut total = 0;
    let mut non_emb = 0;
    for (name, t) in vs.variables() {
        let n = t.numel() as i64;
        total += n;
        if !name.starts_with("emb") && !name.starts_with("pos2d") {
            non_emb += n;
        }
    }
    (total, non_emb)
}
