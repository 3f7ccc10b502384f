//! Fixtures shared by the integration tests that drive the `model` binary (and, through a
//! `#[path]` include, by `tools/packer`'s tests that drive `pack`).

// Not every test crate that includes this module uses every fixture.
#![allow(dead_code)]

use catdog::blob::{write_blob, BlobMeta};
use catdog::dataset::{Dataset, Synthetic};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

/// A fresh, empty temporary folder for one test.
pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("catdog-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh empty folder for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `catdog-TAG-PID-NAME` in the system's temporary folder.
    pub fn new(tag: &str, name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("catdog-{tag}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    /// The path of `f` inside the folder.
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A labeled blob of `n` synthetic `size` x `size` images (dogs redder), as `tools/pack` writes,
/// with sources named `synthetic/I.png`.
pub fn synthetic_blob(path: &Path, n: usize, size: usize, seed: u64) {
    let s = Synthetic::new(n, size, seed);
    let meta = BlobMeta {
        height: size as u32,
        width: size as u32,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: s.labels().to_vec(),
        sources: (0..n)
            .map(|i| format!("synthetic/{i}.png").into())
            .collect(),
        note: "synthetic".into(),
    };
    write_blob(path, &meta, (0..n).map(|i| s.image(i))).unwrap();
}

/// The flags of the small network most command-line tests train: three 16-filter convolutions
/// and 16 hidden neurons.
pub const SMALL_NET: [&str; 4] = ["--widths", "16,16,16", "--fc1", "16"];

/// Owned copies of command-line arguments.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The words of `flags` (split at white space), as owned arguments.
pub fn words(flags: &str) -> Vec<String> {
    flags.split_whitespace().map(String::from).collect()
}

/// `train` on `dir`'s `train.bin` and `test.bin`, then the words of `flags`.
pub fn train_on_blobs(dir: &Path, flags: &str) -> Vec<String> {
    let d = dir.display();
    let (train, test) = (format!("{d}/train.bin"), format!("{d}/test.bin"));
    let mut a = strings(&["train", "--train", &train, "--test", &test]);
    a.extend(words(flags));
    a
}

/// The arguments of a small run of the improved recipe on `dir`'s `train.bin` and `test.bin`:
/// `epochs` epochs, batch 8, 2 threads.
pub fn small_run(dir: &Path, epochs: u32) -> Vec<String> {
    train_on_blobs(
        dir,
        &format!(
            "--widths 16,32,16 --fc1 16 --batch-size 8 --epochs {epochs} --lr 0.02 \
             --recipe improved --threads 2 --log-every 0"
        ),
    )
}

/// Sets the value after `flag` in `args` (which must hold `flag`).
pub fn set_flag(args: &mut [String], flag: &str, value: &str) {
    let i = args.iter().position(|a| a == flag).expect(flag);
    args[i + 1] = value.into();
}

/// A fresh temporary folder (as [`tmp`]) holding `train.bin` and `test.bin`: synthetic blobs of
/// `size` x `size` images, `(count, seed)` each.
pub fn tmp_with_blobs(tag: &str, size: usize, train: (usize, u64), test: (usize, u64)) -> PathBuf {
    let d = tmp(tag);
    synthetic_blob(&d.join("train.bin"), train.0, size, train.1);
    synthetic_blob(&d.join("test.bin"), test.0, size, test.1);
    d
}

/// What a finished command wrote to standard error.
pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a finished command wrote to standard error, asserted to contain every `want` and none of
/// `not`.
pub fn stderr_with(o: &Output, want: &[&str], not: &[&str]) -> String {
    let err = stderr_of(o);
    for w in want {
        assert!(err.contains(w), "expected {w:?} in {err}");
    }
    for n in not {
        assert!(!err.contains(n), "unexpected {n:?} in {err}");
    }
    err
}

/// Asserts that a command succeeded, showing its standard error where it did not.
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr_of(o));
}

/// The accuracy in the last line of what `model eval` (or `train`) printed, `Accuracy is: A`.
pub fn final_accuracy(stdout: &str) -> f64 {
    let last = stdout.lines().last().unwrap();
    last.trim_start_matches("Accuracy is: ").parse().unwrap()
}

/// One `error:` line containing every `want`, exit code 2, no panic and no internal error; the
/// line.
pub fn assert_refused(o: &Output, want: &[&str]) -> String {
    let err = stderr_of(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    // A string continuation without its `\` leaves the source indentation in the message.
    assert!(!errors[0].contains("   "), "a run of spaces in {err:?}");
    for w in want {
        assert!(errors[0].contains(w), "expected {w:?} in {err:?}");
    }
    errors[0].to_string()
}

/// Waits for `child` at most `secs` seconds; kills it and panics if it is still running.
pub fn wait_or_kill(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s (hung)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `../shared/REL` beside the repository (photos and reference data the tests use where they
/// are present), or `None` after a note that `test` is skipped; a failure, naming the missing
/// path, under `CATDOG_REQUIRE_SHARED=1` (which CI sets where `../shared` is present).
pub fn shared_or_skip(test: &str, rel: &str) -> Option<PathBuf> {
    // The workspace root: this file is included by the root crate's tests and by tools/packer's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .expect("the workspace root holds Cargo.lock");
    let p = root.join("../shared").join(rel);
    let lack = format!("{} is absent", p.display());
    catdog::testing::require(p.exists(), "CATDOG_REQUIRE_SHARED", test, &lack).ok()?;
    Some(p)
}

/// Whether `/dev/full` (a disk that is always full) is here. Every Linux system has it, so there
/// its absence fails the test; elsewhere, a note that `test` is skipped.
pub fn have_dev_full() -> bool {
    let here = Path::new("/dev/full").exists();
    if !here {
        assert!(!cfg!(target_os = "linux"), "/dev/full is absent on Linux");
        eprintln!("note: no /dev/full: skipped");
    }
    here
}

/// Makes a FIFO (a named pipe) at `p`.
#[cfg(unix)]
pub fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {p:?}"
    );
}

/// Outputs that are not regular files, in `dir`: a FIFO `fifo`, and a symbolic link `link` to
/// the file `target`, which holds `keep me`; their paths `(fifo, target, link)`.
#[cfg(unix)]
pub fn fifo_and_link(dir: &Path, fifo: &str, target: &str, link: &str) -> [PathBuf; 3] {
    let (fifo, target, link) = (dir.join(fifo), dir.join(target), dir.join(link));
    mkfifo(&fifo);
    std::fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    [fifo, target, link]
}

/// Asserts that the outputs of [`fifo_and_link`] (and further `links` to `target`) are what they
/// were: a FIFO, links, and `target` still holding `keep me`.
#[cfg(unix)]
pub fn assert_fifo_and_links_kept(fifo: &Path, target: &Path, links: &[&Path]) {
    assert!(is_fifo(fifo), "{fifo:?} is no longer a FIFO");
    for l in links {
        assert!(is_symlink(l), "{l:?} is no longer a symbolic link");
    }
    assert_eq!(std::fs::read(target).unwrap(), b"keep me");
}

/// Whether `p` is a FIFO (not following a link).
#[cfg(unix)]
pub fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

/// Whether `p` is a symbolic link.
pub fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// `/dev/full` opened for writing, for a child's standard output.
pub fn dev_full() -> std::fs::File {
    std::fs::File::create("/dev/full").unwrap()
}

/// Everything `child` writes to standard error until it exits, once it has (within `secs`
/// seconds, see [`wait_or_kill`]).
pub fn stderr_after_exit(child: &mut Child, secs: u64, what: &str) -> (ExitStatus, String) {
    let st = wait_or_kill(child, secs, what);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (st, err)
}

/// The first line `child` writes to its (piped) standard output, after which the pipe is closed,
/// as `head -1` does.
pub fn first_line_then_close(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    first
}

/// The names of the entries of folder `dir`.
pub fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect()
}

/// A folder for this test process to run `model` in: the binary's defaults (`data/runs/N`,
/// `data/train.bin`) then land there, never in the checkout's `data/`.
pub fn scratch_cwd() -> PathBuf {
    let d = std::env::temp_dir().join(format!("catdog-test-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
