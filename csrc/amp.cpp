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

// Whether CPU autocast is on (for tests).
bool trldm_autocast_cpu_is_enabled() {
  return at::autocast::is_autocast_enabled(at::kCPU);
}
}
