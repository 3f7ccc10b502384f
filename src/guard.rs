//! Where the programs meet an unlucky outside world: closed or full standard streams, and the
//! exit codes both binaries (`model`, `tools/pack`) share.
//!
//! Exit codes: 0 success; 2 bad input or any other error reported with one `error:` line;
//! [`EXIT_BROKEN_PIPE`] (141, what a shell reports for a program killed by SIGPIPE) when the
//! reader of standard output or standard error went away (`| head`): the run stops quietly;
//! 101 an internal error (a bug).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

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
    ($($t:tt)*) => { $crate::guard::write_std(false, format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that returns `Result<(), String>` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::guard::write_std(false, format_args!($($t)*)) };
}

/// `eprintln!` that returns `Result<(), String>` instead of panicking on a closed or full stderr.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::guard::write_std(true, format_args!("{}\n", format_args!($($t)*))) };
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
