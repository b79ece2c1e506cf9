//! Mixed precision (Sec. 9.1, 9.6: bf16): forward passes under bf16
//! autocast on the run's device. CUDA uses tch's switch; the CPU (where
//! AVX512-BF16 / AMX make bf16 matrix products 2-3x faster than fp32) uses
//! the C++ shim csrc/amp.cpp. As in PyTorch's autocast, parameters stay fp32,
//! matrix products run in bf16, and the backward pass runs outside the region.
use anyhow::{bail, Result};
use tch::Device;

use crate::config::TrainConfig;

#[cfg(trldm_amp_cpu)]
extern "C" {
    fn trldm_autocast_cpu_set(enabled: bool) -> bool;
    fn trldm_autocast_cpu_is_enabled() -> bool;
    fn trldm_autocast_cache_set(enabled: bool) -> bool;
}

/// Whether this binary can autocast on the CPU (the shim was compiled).
pub fn cpu_autocast_built() -> bool {
    cfg!(trldm_amp_cpu)
}

/// Whether a run's forward passes autocast to bf16 on `device`:
/// `train.bf16` on CUDA, `train.cpu_bf16` on the CPU.
pub fn enabled(t: &TrainConfig, device: Device) -> bool {
    if device.is_cuda() {
        t.bf16
    } else {
        t.cpu_bf16
    }
}

/// Errors when a config asks for CPU autocast that this build lacks.
pub fn check(t: &TrainConfig) -> Result<()> {
    if t.cpu_bf16 && !cpu_autocast_built() {
        bail!("train.cpu_bf16 = true, but this trldm was built without the libtorch headers (csrc/amp.cpp not compiled)");
    }
    Ok(())
}

/// Runs `f` under bf16 autocast on `device` when `on`.
pub fn autocast<T>(device: Device, on: bool, f: impl FnOnce() -> T) -> T {
    if !on {
        f()
    } else if device.is_cuda() {
        tch::autocast(true, f)
    } else {
        cpu_autocast(f)
    }
}

/// Turns autocast's cast cache off (or on) for the calling thread; returns
/// the previous setting. Training threads (`train.workers` > 1) turn it off:
/// the cache is one map for the whole process, and each thread's outermost
/// region clears it when it ends, so with two threads training at once a
/// weight used several times in one forward pass sometimes shares one cast
/// (its gradient contributions summed in bf16) and sometimes gets a fresh
/// one (summed in fp32), as the other thread's timing falls. Measured: 100
/// updates of sweeps/cpu/maze9-24min-long.toml with 2 threads, three runs,
/// loss 0.2541 / 0.2438 / 0.2771 with the cache, 0.241973 three times
/// without; training 4 % slower (docs/FACTS.md, "Training threads").
pub fn set_cast_cache_in_this_thread(enabled: bool) -> bool {
    #[cfg(trldm_amp_cpu)]
    {
        // SAFETY: sets libtorch's thread-local cache switch.
        unsafe { trldm_autocast_cache_set(enabled) }
    }
    #[cfg(not(trldm_amp_cpu))]
    {
        let _ = enabled;
        true
    }
}

/// CPU autocast region, nested like tch::autocast: the cast cache (one for
/// the process) is cleared when this thread's outermost region ends.
#[cfg(trldm_amp_cpu)]
fn cpu_autocast<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain calls into libtorch's autocast state (the switches and
    // the nesting are thread-local, the cast cache process-wide).
    let prev = unsafe { trldm_autocast_cpu_set(true) };
    unsafe { torch_sys::at_autocast_increment_nesting() };
    let out = f();
    unsafe {
        if torch_sys::at_autocast_decrement_nesting() == 0 {
            torch_sys::at_autocast_clear_cache();
        }
        trldm_autocast_cpu_set(prev);
    }
    out
}

#[cfg(not(trldm_amp_cpu))]
fn cpu_autocast<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Whether CPU autocast is on in this thread (tests).
pub fn cpu_autocast_is_on() -> bool {
    #[cfg(trldm_amp_cpu)]
    {
        // SAFETY: reads libtorch's thread-local autocast state.
        unsafe { trldm_autocast_cpu_is_enabled() }
    }
    #[cfg(not(trldm_amp_cpu))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// The cache switch belongs to the thread that sets it (a training
    /// thread's setting must not reach the sampling or the other tests).
    #[test]
    fn the_cast_cache_switch_is_per_thread() {
        assert!(cpu_autocast_built(), "built without the shim");
        let (before, after) = std::thread::spawn(|| {
            let before = set_cast_cache_in_this_thread(false);
            (before, set_cast_cache_in_this_thread(false))
        })
        .join()
        .unwrap();
        assert!(before, "on by default");
        assert!(!after, "off once turned off");
        assert!(set_cast_cache_in_this_thread(true), "untouched here");
    }

    #[test]
    fn cpu_autocast_runs_matmuls_in_bf16_and_nests() {
        assert!(
            cpu_autocast_built(),
            "built without the shim: libtorch headers missing"
        );
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        let (k_in, k_nested, on_nested) = autocast(Device::Cpu, true, || {
            let inner = autocast(Device::Cpu, true, || {
                (a.matmul(&b).kind(), cpu_autocast_is_on())
            });
            (a.matmul(&b).kind(), inner.0, inner.1)
        });
        assert_eq!(k_in, Kind::BFloat16);
        assert_eq!(k_nested, Kind::BFloat16);
        assert!(on_nested);
        assert!(
            !cpu_autocast_is_on(),
            "the region must switch autocast off again"
        );
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        assert_eq!(
            autocast(Device::Cpu, false, || a.matmul(&b).kind()),
            Kind::Float
        );
    }
}
