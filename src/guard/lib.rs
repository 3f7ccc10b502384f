//! catdog-guard: where the programs meet an unlucky outside world, in one place for both
//! binaries (`model`, `tools/pack`) and the file formats of the core: exit codes, closed or full
//! standard streams (`outln!`, `errln!`), Ctrl-C and SIGTERM, SIGBUS on a memory map whose file
//! shrank, regular-file checks on inputs, outputs that must not be inputs, temp files and atomic
//! writes. The network crate (`catdog-core`) uses it only to open, map and write its files.
//!
//! Exit codes: 0 success; 2 bad input or any other error reported with one `error:` line;
//! [`EXIT_BROKEN_PIPE`] (141, what a shell reports for a program killed by SIGPIPE) when the
//! reader of standard output or standard error went away (`| head`): the run stops quietly;
//! 101 an internal error (a bug).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Exit code of every reported error (bad input, unwritable output, failed write).
pub const EXIT_ERROR: u8 = 2;
/// Exit code when standard output or error is a closed pipe: 128 + SIGPIPE, as a shell reports
/// a program that SIGPIPE killed.
pub const EXIT_BROKEN_PIPE: u8 = 141;

static BROKEN_PIPE: AtomicBool = AtomicBool::new(false);

/// Whether a write to standard output or error found the pipe closed.
pub fn broken_pipe() -> bool {
    BROKEN_PIPE.load(Ordering::SeqCst)
}

/// The message for a failed write to a standard stream; a closed pipe is also recorded, so that
/// the program can stop quietly with [`EXIT_BROKEN_PIPE`] (see [`exit_code`]).
pub fn stream_error(stderr: bool, e: &std::io::Error) -> String {
    let name = if stderr { "error" } else { "output" };
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        BROKEN_PIPE.store(true, Ordering::SeqCst);
        format!("standard {name} is a closed pipe")
    } else {
        format!("cannot write to standard {name}: {e}")
    }
}

/// Writes to standard output (`stderr == false`) or error; a failure is an `Err` with the
/// message, never a panic (what `println!` does). Used through [`outln!`](crate::outln) and
/// [`errln!`](crate::errln).
pub fn write_std(stderr: bool, args: std::fmt::Arguments) -> Result<(), String> {
    let r = if stderr {
        std::io::stderr().lock().write_fmt(args)
    } else {
        let mut o = std::io::stdout().lock();
        o.write_fmt(args).and_then(|_| o.flush())
    };
    r.map_err(|e| stream_error(stderr, &e))
}

/// `println!` that returns `Result<(), String>` instead of panicking on a closed or full stdout.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::write_std(false, format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that returns `Result<(), String>` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::write_std(false, format_args!($($t)*)) };
}

/// `eprintln!` that returns `Result<(), String>` instead of panicking on a closed or full stderr.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::write_std(true, format_args!("{}\n", format_args!($($t)*))) };
}

/// The end of a run: success, a quiet stop on a closed pipe, or one `PREFIX: error: ...` line
/// (`prefix` "" or e.g. "pack: ") and [`EXIT_ERROR`].
pub fn exit_code(result: Result<(), String>, prefix: &str) -> std::process::ExitCode {
    if broken_pipe() {
        return std::process::ExitCode::from(EXIT_BROKEN_PIPE);
    }
    match result {
        Ok(()) => match std::io::stdout().lock().flush() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => exit_code(Err(stream_error(false, &e)), prefix),
        },
        Err(msg) => {
            // If stderr is unwritable too there is no one left to tell.
            let _ = writeln!(std::io::stderr().lock(), "{prefix}error: {msg}");
            std::process::ExitCode::from(EXIT_ERROR)
        }
    }
}

/// What a non-regular file is, for messages.
fn file_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a named pipe (FIFO)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// The metadata of `path`, which the caller is about to read as a `what` (such as "parameter
/// file"): an `Err` naming the file when it cannot be read or is a directory.
pub fn metadata_of(path: &Path, what: &str) -> Result<std::fs::Metadata, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{}: cannot read {what}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!(
            "{}: is a directory, expected a {what}",
            path.display()
        ));
    }
    Ok(meta)
}

/// Opens `path` for reading, refusing anything but a regular file (`what` names the input in
/// messages). A FIFO is opened without blocking (O_NONBLOCK), so a pipe with no writer is
/// refused at once instead of waiting forever; a device or socket is refused before a read.
pub fn open_regular(path: &Path, what: &str) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{name}: cannot open {what}: {e}"))?;
    let ft = f
        .metadata()
        .map_err(|e| format!("{name}: cannot stat {what}: {e}"))?
        .file_type();
    if !ft.is_file() {
        return Err(format!(
            "{name}: {what} must be a regular file, this is {}",
            file_kind(ft)
        ));
    }
    Ok(f)
}

/// Longest file name most Linux file systems accept (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// The temporary file every atomic writer of this project writes before renaming it onto
/// `path`: `.NAME.PID.tmp` in the same folder (NAME byte for byte, not lossily converted).
pub fn tmp_path(path: &Path) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut t = std::ffi::OsString::from(".");
    t.push(name);
    t.push(format!(".{}.tmp", std::process::id()));
    Ok(path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(t))
}

/// How a path is identified when looking for two names of one file: the device and inode of
/// an existing file, or the canonical folder plus the name of one not created yet.
#[derive(PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(p: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(p) {
        return Some(Identity::Inode(m.dev(), m.ino()));
    }
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(Identity::Path(
        std::fs::canonicalize(dir).ok()?.join(p.file_name()?),
    ))
}

/// Refuses an output path that exists and is not a regular file: a FIFO, socket or device
/// (run as root, `/dev/null` would be replaced by a file), or a symbolic link (the atomic
/// rename would replace the link, not the file it points to). A folder is left to the caller's
/// own message. Nothing is touched.
pub fn existing_output_ok(p: &Path, flag: &str) -> Result<(), String> {
    let name = p.display();
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    let ft = m.file_type();
    if ft.is_symlink() {
        let to = std::fs::read_link(p)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return Err(format!(
            "{flag} {name} is a symbolic link{to}: writing would replace the link, not the file \
             it points to; give the real path, or another name"
        ));
    }
    if !ft.is_file() && !ft.is_dir() {
        return Err(format!(
            "{flag} {name} is {}, not a regular file: an output would replace it; give a file \
             name",
            file_kind(ft)
        ));
    }
    Ok(())
}

/// Checks, before any work, every file a run will write: not a folder, in an existing,
/// writable folder, with a name whose temporary file (`.NAME.PID.tmp`) is not too long, and
/// none of them the same file as an input or as another output (by device and inode, or by
/// canonical path for a file not yet created), and an existing one a regular file
/// ([`existing_output_ok`]). Each entry is (path, what: e.g. "--checkpoint").
pub fn check_outputs(inputs: &[(&Path, &str)], outputs: &[(&Path, &str)]) -> Result<(), String> {
    for (k, &(p, flag)) in outputs.iter().enumerate() {
        let name = p.display();
        if p.is_dir() {
            return Err(format!(
                "{flag} {name}: is a directory, expected a file name"
            ));
        }
        let tmp = tmp_path(p).map_err(|e| format!("{flag} {e}"))?;
        let tmp_len = tmp.file_name().map_or(0, |n| n.len());
        if tmp_len > NAME_MAX {
            return Err(format!(
                "{flag} {name}: the file name is too long: it is written through a temporary file \
                 .NAME.{}.tmp of {tmp_len} bytes, and names may have at most {NAME_MAX}",
                std::process::id()
            ));
        }
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            let why = if dir.exists() {
                "is not a folder"
            } else {
                "does not exist"
            };
            return Err(format!("{flag} {name}: {} {why}", dir.display()));
        }
        let probe = dir.join(format!(".catdog-write-probe.{}.tmp", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| format!("{flag} {name}: cannot write in {}: {e}", dir.display()))?;
        let _ = std::fs::remove_file(&probe);
        if let Some(id) = identity(p) {
            for &(q, what) in inputs {
                if identity(q).as_ref() == Some(&id) {
                    return Err(format!(
                        "{flag} {name} is the same file as {what} {}: writing it would destroy the \
                         input; choose another name",
                        q.display()
                    ));
                }
            }
            for &(q, what) in &outputs[..k] {
                if identity(q).as_ref() == Some(&id) {
                    return Err(format!(
                        "{flag} {name} and {what} {} are the same file: each output needs its own name",
                        q.display()
                    ));
                }
            }
        }
        // After the same-file checks: a link to an input is named as that input.
        existing_output_ok(p, flag)?;
    }
    Ok(())
}

/// Removes the temporary files that runs killed before they could rename them left in `dir`:
/// `.NAME.PID.tmp` where `ours(NAME)` and process PID is no longer alive. Says so on stderr,
/// one line each (with `prefix`, e.g. "pack: "). Files of live processes are never touched.
pub fn clean_stale(dir: &Path, ours: impl Fn(&str) -> bool, prefix: &str) -> Result<(), String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let Some((what, pid)) = stem.rsplit_once('.') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let ours = ours(what) || what == "catdog-write-probe";
        if ours
            && pid != std::process::id()
            && !process_alive(pid)
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            crate::errln!(
                "{prefix}removed {}, left by an interrupted run (process {pid})",
                e.path().display()
            )?;
        }
    }
    Ok(())
}

/// [`clean_stale`] beside each output: the temporary files of earlier runs that wrote the same
/// names. Run after [`check_outputs`].
pub fn clean_stale_beside(outputs: &[&Path], prefix: &str) -> Result<(), String> {
    for (k, p) in outputs.iter().enumerate() {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if outputs[..k].iter().any(|q| q.parent() == p.parent()) {
            continue; // that folder was cleaned already
        }
        let same_dir: Vec<String> = outputs
            .iter()
            .filter(|q| q.parent() == p.parent())
            .filter_map(|q| Some(q.file_name()?.to_string_lossy().into_owned()))
            .collect();
        clean_stale(dir, |name| same_dir.iter().any(|n| n == name), prefix)?;
    }
    Ok(())
}

/// A file name (raw bytes, as the OS gave them) for printing on one line, escaped like `ls -b`:
/// printable characters as they are, `\` as `\\`, tab, newline and carriage return as `\t`,
/// `\n`, `\r`, other control characters (terminal escape sequences among them) as `\xHH`
/// (`\u{HHHH}` beyond ASCII), and bytes that are not UTF-8 as `\xHH`. A name without any of
/// these prints unchanged, and an escaped name never contains a tab or a line break.
pub fn escape_name(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && (c as u32) < 0x80 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                // C1 controls (NEL among them), the line and paragraph separators (U+2028,
                // U+2029: line breaks to some readers), and the invisible characters that
                // reorder or hide text.
                c if c.is_control()
                    || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
                {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`escape_name`] of a path.
pub fn escape_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_name(p.as_os_str().as_bytes())
}

/// Memory maps of input files that [`on_sigbus`] knows: a file truncated by another program
/// while mapped makes every access past its new end raise SIGBUS, which would kill the run
/// with no message. Slot: start address, length (0: free), the message to print.
struct MapSlot {
    taken: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    msg: AtomicPtr<u8>,
    msg_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: MapSlot = MapSlot {
    taken: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    msg: AtomicPtr::new(std::ptr::null_mut()),
    msg_len: AtomicUsize::new(0),
};
const MAP_SLOTS: usize = 64;
static MAPS: [MapSlot; MAP_SLOTS] = [FREE_SLOT; MAP_SLOTS];
static SIGBUS_HANDLER: std::sync::Once = std::sync::Once::new();

/// SIGBUS handler: a fault inside a registered mapping prints that mapping's one-line message
/// and exits with [`EXIT_ERROR`] (only async-signal-safe calls: write, _exit); any other
/// SIGBUS gets the default action back and faults again (a core dump, as without the handler).
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in MAPS.iter() {
        let len = s.len.load(Ordering::Acquire);
        let start = s.start.load(Ordering::Acquire);
        if len != 0 && addr >= start && addr - start < len {
            let (p, n) = (
                s.msg.load(Ordering::Acquire),
                s.msg_len.load(Ordering::Acquire),
            );
            // SAFETY: the message stays allocated while the slot is registered.
            unsafe {
                libc::write(2, p as *const libc::c_void, n);
                libc::_exit(EXIT_ERROR as libc::c_int);
            }
        }
    }
    // SAFETY: restoring the default action is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

/// While alive, a fault (SIGBUS) in the mapping registered by [`guard_mapping`] ends the
/// program with one `error:` line instead of a silent crash.
pub struct MappingGuard {
    slot: usize,
}

/// Registers `len` bytes mapped at `start` from `path`: if the file shrinks under the mapping
/// (another program truncates it), the next access past its end prints one `error:` line
/// naming the file and exits with [`EXIT_ERROR`]. Costs nothing per access (a signal handler
/// installed once); `None` when all slots are taken (then a fault kills as before).
pub fn guard_mapping(start: *const u8, len: usize, path: &Path) -> Option<MappingGuard> {
    SIGBUS_HANDLER.call_once(|| {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
    let slot = MAPS.iter().position(|s| {
        s.taken
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })?;
    let msg = format!(
        "error: {}: the file shrank while this program was reading it (truncated or rewritten \
         in place by another program); stopped. Files already written (checkpoints) are intact\n",
        path.display()
    )
    .into_bytes()
    .into_boxed_slice();
    let s = &MAPS[slot];
    s.msg_len.store(msg.len(), Ordering::Release);
    s.msg
        .store(Box::into_raw(msg) as *mut u8, Ordering::Release);
    s.start.store(start as usize, Ordering::Release);
    s.len.store(len, Ordering::Release);
    Some(MappingGuard { slot })
}

impl Drop for MappingGuard {
    fn drop(&mut self) {
        let s = &MAPS[self.slot];
        s.len.store(0, Ordering::Release);
        let p = s.msg.swap(std::ptr::null_mut(), Ordering::AcqRel);
        let n = s.msg_len.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: made by Box::into_raw of a boxed slice of n bytes in guard_mapping.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) });
        }
        s.taken.store(false, Ordering::Release);
    }
}

/// What an interrupt (SIGINT: Ctrl-C, or SIGTERM) does before the program ends with 128 + the
/// signal's number (130 for Ctrl-C): removes the files and the empty folder registered here
/// (a temporary blob, a run folder that holds nothing yet) and prints the registered line
/// (e.g. which checkpoint was kept and the command that continues). Only async-signal-safe
/// calls in the handler: unlink, rmdir, write, _exit.
static INT_MSG: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INT_MSG_LEN: AtomicUsize = AtomicUsize::new(0);
static INT_DIR: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
const INT_FILE_SLOTS: usize = 8;
#[allow(clippy::declare_interior_mutable_const)]
const NO_FILE: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static INT_FILES: [AtomicPtr<libc::c_char>; INT_FILE_SLOTS] = [NO_FILE; INT_FILE_SLOTS];
static INT_HANDLER: std::sync::Once = std::sync::Once::new();

extern "C" fn on_interrupt(sig: libc::c_int) {
    // SAFETY: every pointer read here was leaked (never freed) by the registering functions
    // below, and only async-signal-safe functions are called.
    unsafe {
        for f in &INT_FILES {
            let p = f.load(Ordering::Acquire);
            if !p.is_null() {
                libc::unlink(p);
            }
        }
        let d = INT_DIR.load(Ordering::Acquire);
        if !d.is_null() {
            libc::rmdir(d); // fails, as it should, once the folder holds anything
        }
        let (p, n) = (
            INT_MSG.load(Ordering::Acquire),
            INT_MSG_LEN.load(Ordering::Acquire),
        );
        if !p.is_null() {
            libc::write(2, p as *const libc::c_void, n);
        }
        libc::_exit(128 + sig);
    }
}

fn install_interrupt_handler() {
    INT_HANDLER.call_once(|| {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        }
    });
}

/// A path as a C string that is never freed (the handler may read it at any moment).
fn leak_cpath(p: &Path) -> *mut libc::c_char {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .unwrap_or_default()
        .into_raw()
}

/// The line an interrupt prints (a line break is put before it, to end a progress bar's line,
/// and after it). Each call leaks the previous text (a few hundred bytes per epoch): freeing it
/// could pull it from under a handler that is printing it.
pub fn on_interrupt_say(msg: &str) {
    install_interrupt_handler();
    let bytes = format!("\n{msg}\n").into_bytes().into_boxed_slice();
    let n = bytes.len();
    // Length first, to zero, so the handler never reads a new pointer with an old length.
    INT_MSG_LEN.store(0, Ordering::Release);
    INT_MSG.store(Box::leak(bytes).as_mut_ptr(), Ordering::Release);
    INT_MSG_LEN.store(n, Ordering::Release);
}

/// A folder an interrupt removes if it is empty (the run folder of a run with no checkpoint yet).
pub fn on_interrupt_remove_dir(p: &Path) {
    install_interrupt_handler();
    INT_DIR.store(leak_cpath(p), Ordering::Release);
}

/// A file an interrupt removes (a temporary file); `false` when all slots are taken.
pub fn on_interrupt_remove_file(p: &Path) -> bool {
    install_interrupt_handler();
    let c = leak_cpath(p);
    INT_FILES.iter().any(|s| {
        s.compare_exchange(std::ptr::null_mut(), c, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })
}

/// Whether process `pid` is alive (its /proc entry exists).
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
/// a crash never leaves a half-written file under `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{}: is a directory, expected a file name",
            path.display()
        ));
    }
    let tmp = tmp_path(path)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot write: {e}", path.display())
    })
}
