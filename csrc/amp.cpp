// bf16 autocast on the CPU: the CPU counterpart of tch::autocast, which
// switches only CUDA's autocast (torch-sys exposes no CPU switch). Compiled
// by build.rs against the libtorch headers; used by src/amp.rs.
#include <ATen/autocast_mode.h>

extern "C" {

// Enables or disables bf16 autocast on the CPU; returns the previous state.
bool trldm_autocast_cpu_set(bool enabled) {
  bool prev = at::autocast::is_autocast_enabled(at::kCPU);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, enabled);
  return prev;
}

// Turns autocast's cast cache on or off for the calling thread. The switch
// is thread-local, but the cache is one map for the whole process, and a
// thread whose outermost autocast region ends clears all of it
// (aten/src/ATen/autocast_mode.cpp: a static map, a thread_local nesting).
bool trldm_autocast_cache_set(bool enabled) {
  bool prev = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(enabled);
  return prev;
}

// Whether CPU autocast is on (for tests).
bool trldm_autocast_cpu_is_enabled() {
  return at::autocast::is_autocast_enabled(at::kCPU);
}

// Whether this CPU runs csrc/fused.cpp, which is compiled for AVX2 and FMA
// (every x86-64 server CPU since 2013; the check keeps older ones on ATen).
bool trldm_fused_cpu_supported() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
}
