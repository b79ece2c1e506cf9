//! Safe wrappers over the fused CPU kernels of csrc/fused.cpp (RMSNorm, the
//! q/k/v split with RoPE, SwiGLU's gate), each an autograd function with one
//! pass forward and one backward. src/model/block.rs calls them on the CPU
//! when `model.cpu_kernels = "fused"` and the shim was compiled
//! ([`available`]); the tests below hold them to the ATen compositions they
//! replace, values and gradients.
use tch::Tensor;

#[cfg(trldm_amp_cpu)]
mod ffi {
    use torch_sys::C_tensor;
    extern "C" {
        pub fn trldm_fused_rms_norm(
            x: *const C_tensor,
            w: *const C_tensor,
            eps: f64,
        ) -> *mut C_tensor;
        pub fn trldm_fused_qkv_rope(
            qkv: *const C_tensor,
            cos: *const C_tensor,
            sin: *const C_tensor,
            out: *mut *mut C_tensor,
        ) -> bool;
        pub fn trldm_fused_swiglu_gate(gu: *const C_tensor) -> *mut C_tensor;
        pub fn trldm_fused_last_error() -> *const std::os::raw::c_char;
        pub fn trldm_fused_cpu_supported() -> bool;
    }

    /// The C++ side's message for a failed call (an internal error: shapes
    /// and dtypes are fixed by the model that calls).
    pub fn fail(what: &str) -> ! {
        // SAFETY: a NUL-terminated string owned by the calling thread.
        let msg = unsafe { std::ffi::CStr::from_ptr(trldm_fused_last_error()) };
        panic!("{what} (csrc/fused.cpp): {}", msg.to_string_lossy())
    }
}

/// Whether the fused kernels can run: this binary has them (built with the
/// libtorch headers) and this CPU has AVX2 and FMA, which they are compiled for.
pub fn available() -> bool {
    #[cfg(trldm_amp_cpu)]
    {
        static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        // SAFETY: a CPUID query, no state.
        *SUPPORTED.get_or_init(|| unsafe { ffi::trldm_fused_cpu_supported() })
    }
    #[cfg(not(trldm_amp_cpu))]
    {
        false
    }
}

#[cfg(trldm_amp_cpu)]
fn ptr(t: Option<&Tensor>) -> *const torch_sys::C_tensor {
    t.map_or(std::ptr::null(), |t| t.as_ptr())
}

/// RMSNorm over the last dimension: x / sqrt(mean(x²) + eps) · w.
#[cfg(trldm_amp_cpu)]
pub fn rms_norm(x: &Tensor, w: Option<&Tensor>, eps: f64) -> Tensor {
    // SAFETY: valid tensor handles in; a new owned handle (or null) out.
    let out = unsafe { ffi::trldm_fused_rms_norm(x.as_ptr(), ptr(w), eps) };
    if out.is_null() {
        ffi::fail("fused RMSNorm");
    }
    // SAFETY: `out` is a fresh torch::Tensor* that we now own.
    unsafe { Tensor::from_ptr(out) }
}

/// qkv [B, L, 3, H, hd] -> (q, k, v), each [B, H, L, hd] and contiguous;
/// q and k rotated by RoPE's (cos, sin) tables [L, hd] when given.
#[cfg(trldm_amp_cpu)]
pub fn qkv_rope(qkv: &Tensor, tables: Option<(&Tensor, &Tensor)>) -> (Tensor, Tensor, Tensor) {
    let (cos, sin) = (tables.map(|t| t.0), tables.map(|t| t.1));
    let mut out = [std::ptr::null_mut(); 3];
    // SAFETY: valid handles in; three fresh owned handles written on success.
    let ok =
        unsafe { ffi::trldm_fused_qkv_rope(qkv.as_ptr(), ptr(cos), ptr(sin), out.as_mut_ptr()) };
    if !ok {
        ffi::fail("fused q/k/v split with RoPE");
    }
    // SAFETY: each is a fresh torch::Tensor* that we now own.
    unsafe {
        (
            Tensor::from_ptr(out[0]),
            Tensor::from_ptr(out[1]),
            Tensor::from_ptr(out[2]),
        )
    }
}

/// SwiGLU's gate: gu [.., 2h] = [g, u] -> silu(g) · u [.., h].
#[cfg(trldm_amp_cpu)]
pub fn swiglu_gate(gu: &Tensor) -> Tensor {
    // SAFETY: a valid handle in; a new owned handle (or null) out.
    let out = unsafe { ffi::trldm_fused_swiglu_gate(gu.as_ptr()) };
    if out.is_null() {
        ffi::fail("fused SwiGLU gate");
    }
    // SAFETY: `out` is a fresh torch::Tensor* that we now own.
    unsafe { Tensor::from_ptr(out) }
}

#[cfg(not(trldm_amp_cpu))]
pub fn rms_norm(_: &Tensor, _: Option<&Tensor>, _: f64) -> Tensor {
    unreachable!("fused kernels used although fused::available() is false")
}

#[cfg(not(trldm_amp_cpu))]
pub fn qkv_rope(_: &Tensor, _: Option<(&Tensor, &Tensor)>) -> (Tensor, Tensor, Tensor) {
    unreachable!("fused kernels used although fused::available() is false")
}

#[cfg(not(trldm_amp_cpu))]
pub fn swiglu_gate(_: &Tensor) -> Tensor {
    unreachable!("fused kernels used although fused::available() is false")
}

#[cfg(all(test, trldm_amp_cpu))]
mod tests {
    use super::*;
    use crate::model::block::{Rope, NORM_EPS};
    use tch::{Device, Kind};

    /// Max |a - b| / (1 + max |b|).
    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let scale = 1.0 + b.abs().max().double_value(&[]);
        (a - b).abs().max().double_value(&[]) / scale
    }

    fn leaf(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu)).set_requires_grad(true)
    }

    /// Value and gradients of `f(x)` against `g(x)` under a random upstream
    /// gradient, for each input in `xs`.
    fn same_function(
        xs: &[&Tensor],
        fused: impl Fn() -> Tensor,
        aten: impl Fn() -> Tensor,
        tol: f64,
        what: &str,
    ) {
        let a = fused();
        let b = aten();
        assert_eq!(a.size(), b.size(), "{what}: shape");
        assert!(
            rel(&a, &b) < tol,
            "{what}: values differ by {}",
            rel(&a, &b)
        );
        let up = Tensor::randn(b.size(), (Kind::Float, Device::Cpu));
        let ga = Tensor::run_backward(&[(&a * &up).sum(Kind::Float)], xs, false, false);
        let gb = Tensor::run_backward(&[(&b * &up).sum(Kind::Float)], xs, false, false);
        for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
            assert!(
                rel(x, y) < tol,
                "{what}: gradient {i} differs by {}",
                rel(x, y)
            );
        }
    }

    #[test]
    fn the_fused_rms_norm_equals_atens() {
        assert!(available(), "this test needs an AVX2 CPU");
        let x = leaf(&[3, 7, 48], 1);
        let w = (leaf(&[48], 2).detach() * 0.3 + 1.0).set_requires_grad(true);
        same_function(
            &[&x, &w],
            || rms_norm(&x, Some(&w), NORM_EPS),
            || x.rms_norm([48], Some(&w), NORM_EPS),
            1e-5,
            "RMSNorm with weight",
        );
        same_function(
            &[&x],
            || rms_norm(&x, None, NORM_EPS),
            || x.rms_norm([48], None::<&Tensor>, NORM_EPS),
            1e-5,
            "scale-free RMSNorm",
        );
        // A non-contiguous input (a transposed view).
        let xt = leaf(&[48, 5, 6], 3);
        same_function(
            &[&xt],
            || rms_norm(&xt.transpose(0, 2), None, NORM_EPS),
            || xt.transpose(0, 2).rms_norm([48], None::<&Tensor>, NORM_EPS),
            1e-5,
            "RMSNorm of a view",
        );
    }

    #[test]
    fn the_fused_qkv_split_with_rope_equals_atens() {
        let (b, l, h, hd) = (2, 9, 3, 8);
        let qkv = leaf(&[b, l, 3, h, hd], 4);
        let rope = Rope::new(l, hd, Device::Cpu);
        let aten = |with_rope: bool| {
            let p = qkv.permute([2, 0, 3, 1, 4]);
            let (q, k, v) = (p.get(0), p.get(1), p.get(2));
            let (q, k) = if with_rope {
                (rope.apply(&q), rope.apply(&k))
            } else {
                (q, k)
            };
            Tensor::cat(&[q, k, v], 0)
        };
        for with_rope in [true, false] {
            let tables = with_rope.then(|| rope.tables());
            same_function(
                &[&qkv],
                || {
                    let (q, k, v) = qkv_rope(&qkv, tables);
                    assert!(q.is_contiguous() && k.is_contiguous() && v.is_contiguous());
                    Tensor::cat(&[q, k, v], 0)
                },
                || aten(with_rope),
                1e-5,
                if with_rope {
                    "q/k/v with RoPE"
                } else {
                    "q/k/v split"
                },
            );
        }
        // Only q reaches the loss: k's and v's gradients are zero.
        let (q, _, _) = qkv_rope(&qkv, Some(rope.tables()));
        let g = Tensor::run_backward(&[q.sum(Kind::Float)], &[&qkv], false, false);
        assert_eq!(
            g[0].narrow(2, 1, 2)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn the_fused_swiglu_gate_equals_atens() {
        let gu = leaf(&[4, 5, 2 * 24], 5) * 4.0;
        let gu = gu.detach().set_requires_grad(true);
        same_function(
            &[&gu],
            || swiglu_gate(&gu),
            || {
                let c = gu.chunk(2, -1);
                c[0].silu() * &c[1]
            },
            1e-5,
            "SwiGLU gate",
        );
    }

    /// bf16 storage (reachable by direct calls; the model keeps ATen for
    /// bf16 tensors): within bf16 rounding of ATen in fp32.
    #[test]
    fn the_fused_kernels_accept_bf16() {
        let x = leaf(&[2, 5, 32], 6);
        let xb = x.detach().to_kind(Kind::BFloat16);
        let got = rms_norm(&xb, None, NORM_EPS).to_kind(Kind::Float);
        let want = x.detach().rms_norm([32], None::<&Tensor>, NORM_EPS);
        assert!(rel(&got, &want) < 2e-2, "{}", rel(&got, &want));
        let gu = leaf(&[3, 16], 7).detach();
        let got = swiglu_gate(&gu.to_kind(Kind::BFloat16)).to_kind(Kind::Float);
        let c = gu.chunk(2, -1);
        assert!(rel(&got, &(c[0].silu() * &c[1])) < 2e-2);
    }
}
