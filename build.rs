//! Link flags for libtorch (see docs: REFERENCE.md, "Rust ecosystem facts").
//!
//! `torch-sys` (a direct dependency, `links = "tch"`) hands us the libtorch lib
//! folder as `DEP_TCH_LIBTORCH_LIB`. We set an rpath to it so `target/*/trldm`
//! runs without LD_LIBRARY_PATH, and keep `libtorch_cuda` linked even though no
//! symbol of it is referenced directly (otherwise `--as-needed` drops it and
//! CUDA is never found at run time).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
