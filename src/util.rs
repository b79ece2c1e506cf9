//! Small shared helpers: atomic writes, "did you mean" hints, PATH lookup.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temp file in the same folder and a
/// rename, so a reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        // A full disk may only show when the data reaches it.
        f.sync_all()
            .with_context(|| format!("{}: cannot write", path.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot rename into place", path.display()))
    })();
    if written.is_err() {
        // Nothing half-written stays behind; the old file is untouched.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Keeps freed memory in the process heap instead of returning it to the
/// OS after every tensor: libtorch's CPU allocator calls malloc/free for
/// each activation, and glibc serves large blocks with fresh mmaps whose
/// page faults (zero-filling) can cost as much as the arithmetic. Called
/// once at start-up by the binary.
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes glibc allocator parameters; it is called
    // before any other thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// `eprintln!` that never panics: a closed stderr (the reader of a pipe
/// went away) must not kill a training run, which keeps logging to its
/// files (train.csv, status.json).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The known name closest to `name` (Jaro-Winkler above 0.7; for dotted
/// keys the last parts are compared too, so `model.nrec` finds `model.n_rec`).
pub fn closest<S: AsRef<str>>(name: &str, known: &[S]) -> Option<String> {
    let leaf = |s: &str| s.rsplit('.').next().unwrap_or(s).to_string();
    known
        .iter()
        .map(|k| {
            let k = k.as_ref();
            let score =
                strsim::jaro_winkler(name, k).max(strsim::jaro_winkler(&leaf(name), &leaf(k)));
            (score, k)
        })
        .filter(|(s, _)| *s > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

/// "; did you mean `x`?" for the closest known name, or "" when none is close.
pub fn did_you_mean<S: AsRef<str>>(name: &str, known: &[S]) -> String {
    closest(name, known)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// The executable file `prog` on PATH, if any.
pub fn on_path(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The message of a caught panic.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The memory this machine can still give (MemAvailable of /proc/meminfo),
/// in bytes; None where it cannot be read.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// An advisory lock on a folder (`<dir>/.lock`), held while the value
/// lives: two trldm processes never train into the same run folder or run
/// the same sweep folder at once. The file holds the owner's pid.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

/// Takes the lock of `dir` (created if missing), or says who holds it.
/// `what` names the work (`training`, `a sweep`) in the message.
pub fn lock_folder(dir: &Path, what: &str) -> Result<FolderLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join(".lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let owner = std::fs::read_to_string(&path).unwrap_or_default();
            let owner = owner.trim();
            anyhow::bail!(
                "{} is in use: another trldm process{} is {what} there; wait for it to end or stop it first (lock: {})",
                dir.display(),
                if owner.is_empty() { String::new() } else { format!(" (pid {owner})") },
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("{}: cannot lock", path.display()))
        }
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(FolderLock { _file: file })
}

/// `secs` since the Unix epoch as an ISO 8601 UTC time, e.g.
/// `2023-11-14T22:13:20Z` (civil-from-days, proleptic Gregorian calendar).
pub fn utc_iso(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_iso_matches_known_dates() {
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1700000000`: Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(utc_iso(1_700_000_000), "2023-11-14T22:13:20Z");
        // A leap day of a century leap year, and 2100 (not a leap year).
        assert_eq!(utc_iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_iso(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn did_you_mean_suggests_only_close_names() {
        let known = ["model.n_rec", "model.d", "train.lr"];
        assert_eq!(
            did_you_mean("model.nrec", &known),
            "; did you mean `model.n_rec`?"
        );
        assert_eq!(closest("train.lrr", &known).as_deref(), Some("train.lr"));
        assert_eq!(did_you_mean("zzzz", &known), "");
        assert!(on_path("sh").is_some());
        assert!(on_path("no-such-program-trldm").is_none());
    }

    #[test]
    fn a_folder_lock_is_exclusive_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let held = lock_folder(&dir, "training").unwrap();
        let e = lock_folder(&dir, "training").unwrap_err().to_string();
        assert!(e.contains("is in use: another trldm process (pid "), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        lock_folder(&dir, "training").unwrap();
    }
}
