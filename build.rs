//! Link flags for libtorch (docs/FACTS.md, "Rust ecosystem facts"), the
//! venv's NCCL, and the small C++ shim: csrc/amp.cpp (bf16 autocast on the
//! CPU) and csrc/fused.cpp (fused CPU kernels for Net_θ's norms, RoPE, gates).
//!
//! `torch-sys` (a direct dependency, `links = "tch"`) hands us the libtorch lib
//! folder as `DEP_TCH_LIBTORCH_LIB`. We set an rpath to it so `target/*/trldm`
//! runs without LD_LIBRARY_PATH, and keep `libtorch_cuda` linked even though no
//! symbol of it is referenced directly (otherwise `--as-needed` drops it and
//! CUDA is never found at run time). The headers sit beside it (`../include`);
//! when they are there the shim is compiled and `trldm_amp_cpu` is set.
//!
//! NCCL: the venv's `nvidia-nccl` package sits beside torch
//! (`site-packages/nvidia/nccl/lib`) and ships only `libnccl.so.2`, while
//! cudarc dlopens `libnccl.so`; `scripts/setup.sh` adds a `libnccl.so` link in
//! that folder and the rpath below lets the binary's dlopen find it.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/amp.cpp");
    println!("cargo:rerun-if-changed=csrc/fused.cpp");
    println!("cargo::rustc-check-cfg=cfg(trldm_amp_cpu)");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let nccl = Path::new(&lib).join("../../nvidia/nccl/lib");
    if let Ok(nccl) = nccl.canonicalize() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", nccl.display());
    }
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let include = Path::new(&lib).join("../include");
    if include.join("ATen/autocast_mode.h").exists() {
        shim(&include).file("csrc/amp.cpp").compile("trldm_amp");
        // The fused kernels: AVX2 + FMA (checked at run time by
        // trldm_fused_cpu_supported in amp.cpp, compiled without them).
        // Without OpenMP: linking libtorch's libgomp made the resume test
        // flaky under `--features mpi` (docs/FACTS.md, "CPU speed"), so
        // at::parallel_for runs their loops on one thread.
        let mut fused = shim(&include);
        fused.opt_level(3);
        if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
            fused.flag("-mavx2").flag("-mfma");
        }
        fused.file("csrc/fused.cpp").compile("trldm_fused");
        println!("cargo:rustc-cfg=trldm_amp_cpu");
    }
}

/// A C++ build against libtorch's headers.
fn shim(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++17")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag_if_supported("-w")
        // torch 2.11.0 (the pinned version) is built with the C++11 ABI.
        .define("_GLIBCXX_USE_CXX11_ABI", "1");
    b
}
