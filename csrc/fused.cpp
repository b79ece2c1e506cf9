// Fused CPU kernels for Net_θ's memory-bound pieces (App. A.1): RMSNorm,
// the q/k/v split with RoPE, and SwiGLU's gate. ATen runs each of them as
// 5-15 separate passes over [B, L, d] tensors forward and backward, which on
// 2 CPU cores cost more than the matrix products (docs/FACTS.md, "CPU
// speed"); here each is one pass forward and one backward, with its own
// autograd node. Math in fp32 whatever the storage (fp32 or bf16); outputs
// take the input's dtype, as the ATen compositions they replace
// (src/model/block.rs) do. CPU tensors only; src/model/block.rs uses them on
// the CPU and keeps the ATen path on CUDA. Compiled by build.rs with
// csrc/amp.cpp; called through src/model/fused.rs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

namespace {

thread_local std::string last_error;

// An optional input that is not there: an empty tensor (undefined tensors
// cannot pass through autograd's saved variables).
at::Tensor absent() { return at::empty({0}, at::TensorOptions().dtype(at::kFloat)); }

// Rows per parallel task: enough work to amortise the thread pool's cost.
int64_t grain(int64_t row_len) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_len));
}

template <typename T>
inline float ld(const T* p, int64_t i) {
  return static_cast<float>(p[i]);
}

// exp(x) for the SwiGLU gate: Cephes' expf (range reduction by ln 2, degree-6
// polynomial, about 1 ulp), written so that the compiler vectorises the
// loops that call it (std::exp is a scalar libm call per element).
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float a) { return 1.f / (1.f + exp_approx(-a)); }

// ---------------------------------------------------------------- RMSNorm
// y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps), over the last dim.
template <typename T>
void rms_fwd(const T* x, const float* w, T* y, float* rstd, int64_t rows, int64_t d, double eps) {
  at::parallel_for(0, rows, grain(d), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * d;
      T* yr = y + r * d;
      float ss = 0.f;
      for (int64_t i = 0; i < d; ++i) {
        float v = ld(xr, i);
        ss += v * v;
      }
      float s = 1.f / std::sqrt(ss / static_cast<float>(d) + static_cast<float>(eps));
      rstd[r] = s;
      if (w) {
        for (int64_t i = 0; i < d; ++i) yr[i] = static_cast<T>(ld(xr, i) * s * w[i]);
      } else {
        for (int64_t i = 0; i < d; ++i) yr[i] = static_cast<T>(ld(xr, i) * s);
      }
    }
  });
}

// dx = rstd · (g·w − x̂ · mean(g·w·x̂)), x̂ = x · rstd; dw = Σ_rows g · x̂.
// dw is summed over fixed blocks of rows, then the blocks in order, so that
// it does not depend on how many threads ran or how the rows were split
// among them (a killed and resumed run must repeat the same bits).
constexpr int64_t kDwBlock = 64;

template <typename T>
void rms_bwd(const T* x, const float* w, const float* rstd, const T* g, T* dx, float* dw,
             int64_t rows, int64_t d) {
  int64_t blocks = (rows + kDwBlock - 1) / kDwBlock;
  std::vector<float> part(w ? static_cast<size_t>(blocks) * d : 0, 0.f);
  at::parallel_for(0, blocks, 1, [&](int64_t blo, int64_t bhi) {
    for (int64_t blk = blo; blk < bhi; ++blk) {
      float* acc = w ? part.data() + static_cast<size_t>(blk) * d : nullptr;
      for (int64_t r = blk * kDwBlock; r < std::min(rows, (blk + 1) * kDwBlock); ++r) {
        const T* xr = x + r * d;
        const T* gr = g + r * d;
        T* dxr = dx + r * d;
        float s = rstd[r];
        float dot = 0.f;
        for (int64_t i = 0; i < d; ++i) {
          float gw = ld(gr, i) * (w ? w[i] : 1.f);
          dot += gw * ld(xr, i) * s;
        }
        float m = dot / static_cast<float>(d);
        for (int64_t i = 0; i < d; ++i) {
          float xh = ld(xr, i) * s;
          float gw = ld(gr, i) * (w ? w[i] : 1.f);
          dxr[i] = static_cast<T>(s * (gw - xh * m));
          if (acc) acc[i] += ld(gr, i) * xh;
        }
      }
    }
  });
  if (w) {
    for (int64_t i = 0; i < d; ++i) dw[i] = 0.f;
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t i = 0; i < d; ++i) dw[i] += part[static_cast<size_t>(blk) * d + i];
  }
}

struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, double eps) {
    auto xc = x.contiguous();
    int64_t d = xc.size(-1);
    int64_t rows = xc.numel() / d;
    bool has_w = w.numel() > 0;
    auto wf = has_w ? w.to(at::kFloat).contiguous() : absent();
    auto y = at::empty_like(xc);
    auto rstd = at::empty({rows}, xc.options().dtype(at::kFloat));
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xc.scalar_type(), "trldm_rms_fwd", [&] {
      rms_fwd<scalar_t>(xc.data_ptr<scalar_t>(), has_w ? wf.data_ptr<float>() : nullptr,
                        y.data_ptr<scalar_t>(), rstd.data_ptr<float>(), rows, d, eps);
    });
    ctx->save_for_backward({xc, wf, rstd});
    ctx->saved_data["has_w"] = has_w;
    ctx->saved_data["w_dtype"] = has_w ? static_cast<int64_t>(w.scalar_type()) : int64_t{0};
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], wf = saved[1], rstd = saved[2];
    bool has_w = ctx->saved_data["has_w"].toBool();
    auto g = grads[0].to(x.scalar_type()).contiguous();
    int64_t d = x.size(-1);
    int64_t rows = x.numel() / d;
    auto dx = at::empty_like(x);
    auto dw = has_w ? at::empty({d}, x.options().dtype(at::kFloat)) : at::Tensor();
    // (an undefined gradient for an absent weight, as for eps)
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "trldm_rms_bwd", [&] {
      rms_bwd<scalar_t>(x.data_ptr<scalar_t>(), has_w ? wf.data_ptr<float>() : nullptr,
                        rstd.data_ptr<float>(), g.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(),
                        has_w ? dw.data_ptr<float>() : nullptr, rows, d);
    });
    if (has_w) {
      auto wt = static_cast<at::ScalarType>(ctx->saved_data["w_dtype"].toInt());
      dw = dw.to(wt);
    }
    return {dx, dw, at::Tensor()};
  }
};

// --------------------------------------------------- q/k/v split with RoPE
// Forward: qkv [B, L, 3, H, hd] (contiguous) -> q, k, v [B, H, L, hd]
// (contiguous), q and k rotated in the half-split form: out = x·cos +
// rot(x)·sin with rot(x) = [−x2, x1]; cos, sin [L, hd] (fp32, both halves
// equal). Without tables, a plain split. Backward is the transpose: the same
// walk from the parts to the packed gradient with the rotation by −θ
// (dx1 = g1·cos + g2·sin, dx2 = g2·cos − g1·sin).
template <typename T>
void qkv_move(T* packed, T* const parts[3], const float* cos, const float* sin, int64_t B,
              int64_t L, int64_t H, int64_t hd, bool to_parts) {
  int64_t half = hd / 2;
  float sign = to_parts ? 1.f : -1.f;
  at::parallel_for(0, B * L, grain(3 * H * hd), [&](int64_t lo, int64_t hi) {
    for (int64_t bl = lo; bl < hi; ++bl) {
      int64_t b = bl / L, l = bl % L;
      const float* c = cos ? cos + l * hd : nullptr;
      const float* s = sin ? sin + l * hd : nullptr;
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t which = 0; which < 3; ++which) {
          T* p = packed + (((bl * 3) + which) * H + h) * hd;
          T* part = parts[which] + ((b * H + h) * L + l) * hd;
          const T* src = to_parts ? p : part;
          T* dst = to_parts ? part : p;
          if (which == 2 || !c) {
            std::memcpy(dst, src, sizeof(T) * hd);
            continue;
          }
          for (int64_t i = 0; i < half; ++i) {
            float x1 = ld(src, i), x2 = ld(src, i + half);
            dst[i] = static_cast<T>(x1 * c[i] - sign * x2 * s[i]);
            dst[i + half] = static_cast<T>(x2 * c[i] + sign * x1 * s[i]);
          }
        }
      }
    }
  });
}

struct QkvRope : public torch::autograd::Function<QkvRope> {
  static tensor_list forward(AutogradContext* ctx, at::Tensor qkv, at::Tensor cos, at::Tensor sin) {
    auto x = qkv.contiguous();
    int64_t B = x.size(0), L = x.size(1), H = x.size(3), hd = x.size(4);
    bool rope = cos.numel() > 0;
    auto c = rope ? cos.to(at::kFloat).contiguous() : absent();
    auto s = rope ? sin.to(at::kFloat).contiguous() : absent();
    auto opts = x.options();
    auto q = at::empty({B, H, L, hd}, opts), k = at::empty({B, H, L, hd}, opts),
         v = at::empty({B, H, L, hd}, opts);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "trldm_qkv_fwd", [&] {
      scalar_t* parts[3] = {q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>()};
      qkv_move<scalar_t>(x.data_ptr<scalar_t>(), parts, rope ? c.data_ptr<float>() : nullptr,
                         rope ? s.data_ptr<float>() : nullptr, B, L, H, hd, true);
    });
    ctx->save_for_backward({c, s});
    ctx->saved_data["rope"] = rope;
    ctx->saved_data["shape"] = x.sizes().vec();
    return {q, k, v};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    bool rope = ctx->saved_data["rope"].toBool();
    auto shape = ctx->saved_data["shape"].toIntVector();
    int64_t B = shape[0], L = shape[1], H = shape[3], hd = shape[4];
    // An output that did not reach the loss has an undefined gradient.
    at::Tensor any;
    for (auto& g : grads)
      if (g.defined()) any = g;
    auto dtype = any.scalar_type();
    auto fill = [&](const at::Tensor& g) {
      return g.defined() ? g.to(dtype).contiguous() : at::zeros({B, H, L, hd}, any.options());
    };
    auto gq = fill(grads[0]), gk = fill(grads[1]), gv = fill(grads[2]);
    auto out = at::empty(shape, any.options());
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "trldm_qkv_bwd", [&] {
      scalar_t* parts[3] = {gq.data_ptr<scalar_t>(), gk.data_ptr<scalar_t>(), gv.data_ptr<scalar_t>()};
      qkv_move<scalar_t>(out.data_ptr<scalar_t>(), parts,
                         rope ? saved[0].data_ptr<float>() : nullptr,
                         rope ? saved[1].data_ptr<float>() : nullptr, B, L, H, hd, false);
    });
    return {out, at::Tensor(), at::Tensor()};
  }
};

// ------------------------------------------------------------ SwiGLU gate
// gu [.., 2h] = [g, u] -> silu(g) · u [.., h].
template <typename T>
void glu_fwd(const T* gu, T* y, int64_t rows, int64_t h) {
  at::parallel_for(0, rows, grain(2 * h), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* g = gu + r * 2 * h;
      const T* u = g + h;
      T* yr = y + r * h;
      for (int64_t i = 0; i < h; ++i) {
        float a = ld(g, i);
        yr[i] = static_cast<T>(a * sigmoid(a) * ld(u, i));
      }
    }
  });
}

// d/dg = dy · u · σ(g)(1 + g(1 − σ(g))), d/du = dy · silu(g).
template <typename T>
void glu_bwd(const T* gu, const T* dy, T* dgu, int64_t rows, int64_t h) {
  at::parallel_for(0, rows, grain(2 * h), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* g = gu + r * 2 * h;
      const T* u = g + h;
      const T* dyr = dy + r * h;
      T* dg = dgu + r * 2 * h;
      T* du = dg + h;
      for (int64_t i = 0; i < h; ++i) {
        float a = ld(g, i), sg = sigmoid(a), d = ld(dyr, i);
        dg[i] = static_cast<T>(d * ld(u, i) * sg * (1.f + a * (1.f - sg)));
        du[i] = static_cast<T>(d * a * sg);
      }
    }
  });
}

struct SwiGluGate : public torch::autograd::Function<SwiGluGate> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor gu) {
    auto x = gu.contiguous();
    int64_t h = x.size(-1) / 2;
    int64_t rows = x.numel() / (2 * h);
    auto sizes = x.sizes().vec();
    sizes.back() = h;
    auto y = at::empty(sizes, x.options());
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "trldm_glu_fwd", [&] {
      glu_fwd<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), rows, h);
    });
    ctx->save_for_backward({x});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto x = ctx->get_saved_variables()[0];
    auto dy = grads[0].to(x.scalar_type()).contiguous();
    int64_t h = x.size(-1) / 2;
    int64_t rows = x.numel() / (2 * h);
    auto dx = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "trldm_glu_bwd", [&] {
      glu_bwd<scalar_t>(x.data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(),
                        rows, h);
    });
    return {dx};
  }
};

template <typename F>
bool guard(F f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    last_error = e.what();
    return false;
  }
}

}  // namespace

extern "C" {

// Each returns a new tensor handle (tch's torch::Tensor*), or null with the
// message in trldm_fused_last_error().

at::Tensor* trldm_fused_rms_norm(const at::Tensor* x, const at::Tensor* w, double eps) {
  at::Tensor* out = nullptr;
  guard([&] { out = new at::Tensor(RmsNorm::apply(*x, w ? *w : absent(), eps)); });
  return out;
}

// Writes three handles (q, k, v) into out; cos/sin may be null (no RoPE).
bool trldm_fused_qkv_rope(const at::Tensor* qkv, const at::Tensor* cos, const at::Tensor* sin,
                          at::Tensor** out) {
  return guard([&] {
    auto r = QkvRope::apply(*qkv, cos ? *cos : absent(), sin ? *sin : absent());
    for (int i = 0; i < 3; ++i) out[i] = new at::Tensor(r[i]);
  });
}

at::Tensor* trldm_fused_swiglu_gate(const at::Tensor* gu) {
  at::Tensor* out = nullptr;
  guard([&] { out = new at::Tensor(SwiGluGate::apply(*gu)); });
  return out;
}

const char* trldm_fused_last_error() { return last_error.c_str(); }
}
