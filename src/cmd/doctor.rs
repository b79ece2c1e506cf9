//! `trldm doctor`: what this machine offers trldm.
use anyhow::Result;

pub fn run() -> Result<()> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("trldm {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch: {} (tch 0.24.0)", torch_version());
    let cuda = tch::Cuda::is_available();
    println!("cuda available: {}", yes_no(cuda));
    println!(
        "cuda devices: {}",
        if cuda { tch::Cuda::device_count() } else { 0 }
    );
    println!(
        "cudnn available: {}",
        yes_no(tch::Cuda::cudnn_is_available())
    );
    println!("cpu threads (libtorch): {}", tch::get_num_threads());
    println!(
        "cpu cores: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "cpu bf16 (train.cpu_bf16): {}",
        match (crate::amp::cpu_autocast_built(), cpu_bf16_flags()) {
            (false, _) => "not built (libtorch headers missing at build time)".to_string(),
            (true, f) if f.is_empty() =>
                "built, but this CPU has no bf16 instructions (slow)".into(),
            (true, f) => format!("yes ({})", f.join(", ")),
        }
    );
    println!(
        "nccl (libnccl.so, multi-GPU data parallelism): {}",
        if crate::dist::nccl::library_present() {
            "yes".to_string()
        } else {
            "no (scripts/setup.sh links the venv's nvidia/nccl/lib/libnccl.so.2 as libnccl.so, \
             which this binary finds through its rpath; or put a libnccl.so on LD_LIBRARY_PATH)"
                .to_string()
        }
    );
    println!(
        "mpi (CPU data parallelism, mpirun / srun --mpi=pmix): {}",
        if cfg!(feature = "mpi") {
            "built in".to_string()
        } else {
            format!("not built: {}", crate::dist::cpu::HOW_TO_ENABLE)
        }
    );
    for prog in ["sbatch", "srun", "squeue", "scontrol", "mpirun"] {
        match crate::util::on_path(prog) {
            Some(p) => println!("{prog}: {}", p.display()),
            None => println!("{prog}: not found"),
        }
    }
    Ok(())
}

/// The CPU's bf16 matrix instructions, from /proc/cpuinfo.
fn cpu_bf16_flags() -> Vec<&'static str> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    ["avx512_bf16", "amx_bf16"]
        .into_iter()
        .filter(|f| flags.contains(f))
        .collect()
}

/// libtorch's version: read from the `torch/version.py` next to the
/// libtorch_cpu.so that this process actually loaded (/proc/self/maps).
fn torch_version() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .map(std::path::PathBuf::from);
    let Some(lib) = lib else {
        return "unknown (libtorch_cpu.so not found in this process)".into();
    };
    let version = lib
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("../version.py")).ok())
        .and_then(|v| {
            v.lines()
                .find(|l| l.starts_with("__version__"))
                .and_then(|l| l.split('\'').nth(1))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown version".into());
    format!("{version} at {}", lib.display())
}
