//! `tools/pack --fetch petimages`: downloads Microsoft's public PetImages archive (the Kaggle
//! cats-and-dogs photos, no account needed) into `OUT/downloads/`, resuming a partial download
//! with an HTTP `Range` request, checks that it is a zip holding `PetImages/Cat/` and
//! `PetImages/Dog/`, and unzips those two folders; `main.rs` then packs them like any folder.
//!
//! `CATDOG_DATA_URL` replaces the URL (a mirror, or a test's local server).

use indicatif::{ProgressBar, ProgressStyle};
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Microsoft publishes the archive (about 787 MB).
pub const PETIMAGES_URL: &str = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip";
/// The archive's file name under `OUT/downloads/`.
pub const PETIMAGES_FILE: &str = "kagglecatsanddogs_5340.zip";
/// Environment variable that replaces [`PETIMAGES_URL`].
pub const URL_ENV: &str = "CATDOG_DATA_URL";
/// Connection drops survived within one run before giving up (the next run resumes anyway).
const MAX_RESUMES: u32 = 5;

/// How long a download may go without receiving a byte before it counts as dropped: 60 s
/// (`CATDOG_TEST_FETCH_IDLE_S` shortens it, for the tests).
fn idle_limit() -> Duration {
    let s = std::env::var("CATDOG_TEST_FETCH_IDLE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(s)
}

/// The URL to fetch: `CATDOG_DATA_URL`, or Microsoft's.
pub fn url() -> String {
    std::env::var(URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| PETIMAGES_URL.to_string())
}

/// The commands that do by hand what `--fetch` does.
pub fn by_hand(url: &str, out: &Path) -> String {
    format!(
        "to do it by hand: download {url} , unzip it into a folder DIR, then run \
         `tools/pack DIR/PetImages --test-fraction 0.2 -o {}`",
        out.display()
    )
}

/// The bar for a download: bytes, rate with one decimal, ETA. Hidden off a terminal.
fn bar(total: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    pb.set_style(
        ProgressStyle::with_template(
            "downloading {bytes}/{total_bytes} [{wide_bar}] {rate} ETA {eta}",
        )
        .expect("valid template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} MB/s", s.per_sec() / 1e6);
            },
        )
        .progress_chars("=> "),
    );
    pb
}

/// `Content-Range: bytes START-END/TOTAL` -> (START, TOTAL).
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// Downloads `url` to `dest`. Bytes go to `dest.part` first and the file is renamed when
/// complete; a `.part` left by an interrupted run (or a connection dropped during this one) is
/// continued with `Range: bytes=N-`. A server that ignores the range (HTTP 200) is read from
/// the start. Returns the size. `dest` already present means done.
pub fn download(url: &str, dest: &Path, quiet: bool) -> Result<u64, String> {
    if let Ok(m) = fs::metadata(dest) {
        if m.is_file() && m.len() > 0 {
            return Ok(m.len());
        }
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(format!(
            "cannot download {url}: only http:// and https:// URLs can be fetched (for a file on \
             this machine, copy it to {})",
            dest.display()
        ));
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut drops = 0u32;
    loop {
        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let mut req = agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = req
            .call()
            .map_err(|e| format!("cannot download {url}: {e}"))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let length: Option<u64> = header("content-length").and_then(|v| v.trim().parse().ok());
        let (append, total) = match status {
            200 => (false, length),
            206 => match header("content-range").as_deref().and_then(content_range) {
                Some((start, total)) if start == have => (true, total),
                _ => {
                    return Err(format!(
                        "cannot download {url}: the server answered a resumed download with a \
                         range other than bytes={have}- (delete {} to start again)",
                        part.display()
                    ))
                }
            },
            416 if have > 0 => {
                // Nothing left to send: a `.part` that is already the whole archive (killed
                // just before its rename) is complete.
                if is_zip(&part) {
                    rename(&part, dest)?;
                    return Ok(have);
                }
                // The partial file is not a prefix the server knows: start again.
                fs::remove_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
                drops += 1;
                if drops > MAX_RESUMES {
                    return Err(format!("cannot download {url}: HTTP 416 again and again"));
                }
                continue;
            }
            s => {
                return Err(format!(
                    "cannot download {url}: the server answered HTTP {s}"
                ))
            }
        };
        if append {
            eprintln!("pack: resuming the download of {url} at byte {have}");
        } else {
            eprintln!(
                "pack: downloading {url}{} to {}",
                total.map_or(String::new(), |t| format!(" ({:.0} MB)", t as f64 / 1e6)),
                dest.display()
            );
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        let start = if append { have } else { 0 };
        let pb = bar(total, quiet);
        pb.set_position(start);
        // The body is read on a thread so that a server that stalls after its headers is
        // noticed: no byte for `idle` counts as a dropped connection (then resumed). A
        // stalled reader thread is left behind; it ends with the connection or the program.
        let mut body = resp.into_body().into_reader();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let r = match body.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e.to_string()),
                };
                let stop = r.is_err();
                if tx.send(r).is_err() || stop {
                    return;
                }
            }
        });
        let idle = idle_limit();
        let mut got = start;
        let read_err = loop {
            match rx.recv_timeout(idle) {
                Ok(Ok(chunk)) => {
                    f.write_all(&chunk)
                        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
                    got += chunk.len() as u64;
                    pb.set_position(got);
                }
                Ok(Err(e)) => break Some(e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    break Some(format!("no data for {} s", idle.as_secs()))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        };
        pb.finish_and_clear();
        f.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        let short = total.is_some_and(|t| got < t);
        if read_err.is_some() || short {
            let why = read_err.unwrap_or_else(|| "connection closed early".into());
            drops += 1;
            if drops > MAX_RESUMES {
                return Err(format!(
                    "cannot download {url}: interrupted {drops} times, last at byte {got} ({why}); \
                     run the same command again to resume from {}",
                    part.display()
                ));
            }
            eprintln!(
                "pack: the download was interrupted at byte {got}{} ({why}); resuming",
                total.map_or(String::new(), |t| format!(" of {t}"))
            );
            continue;
        }
        // Only a zip gets the final name: an HTML page (a login or error page answered with
        // 200) or a body cut short without a Content-Length is not one.
        if !is_zip(&part) {
            let mut head = [0u8; 64];
            let n = fs::File::open(&part)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
            if text.trim_start().starts_with('<') {
                let _ = fs::remove_file(&part);
                return Err(format!(
                    "cannot download {url}: the server sent a web page ({got} bytes), not a zip \
                     archive; nothing was kept (check the URL, or a proxy's login page)"
                ));
            }
            return Err(format!(
                "cannot download {url}: the {got} bytes received are not a whole zip archive \
                 (the connection may have ended early); run the same command again to resume \
                 {}, or delete it to start over",
                part.display()
            ));
        }
        rename(&part, dest)?;
        return Ok(got);
    }
}

/// Whether `p` reads as a zip archive (its central directory is found and parsed).
fn is_zip(p: &Path) -> bool {
    fs::File::open(p).is_ok_and(|f| zip::ZipArchive::new(f).is_ok())
}

/// Opens `zip_path` and checks it is a zip with `PetImages/Cat/` and `PetImages/Dog/` entries.
pub fn check_archive(zip_path: &Path) -> Result<zip::ZipArchive<fs::File>, String> {
    let f = fs::File::open(zip_path).map_err(|e| format!("{}: {e}", zip_path.display()))?;
    let z = zip::ZipArchive::new(f).map_err(|e| {
        format!(
            "{}: not a readable zip archive ({e}); delete it to download it again",
            zip_path.display()
        )
    })?;
    let has = |dir: &str| z.file_names().any(|n| n.starts_with(dir));
    if !has("PetImages/Cat/") || !has("PetImages/Dog/") {
        return Err(format!(
            "{}: a zip archive, but without the folders PetImages/Cat/ and PetImages/Dog/: not \
             Microsoft's PetImages archive",
            zip_path.display()
        ));
    }
    Ok(z)
}

/// Bytes free for an unprivileged user on the file system of `dir` (`None` if unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a struct to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Why an unzip failed: the archive (damaged or hostile: the next run must not read it again)
/// or this machine (a full disk, a folder that cannot be written).
pub enum Unzip {
    BadArchive(String),
    Local(String),
}

/// Unzips the `PetImages/Cat/` and `PetImages/Dog/` entries of `z` under `dir`, returning
/// `dir/PetImages`. Files go to `dir/PetImages.partial/` first, renamed when all are out, so an
/// interrupted unzip is redone, never half used; on failure the partial folder is removed.
/// An entry whose name has a `..` or `.` component is skipped (it could leave the folder), as
/// is one larger than the packer reads ([`crate::MAX_FILE_BYTES`]); the whole expansion must
/// fit in the disk's free space, checked before writing, and an entry that expands beyond its
/// declared size stops the unzip. Other entries are left in the archive.
pub fn extract(z: &mut zip::ZipArchive<fs::File>, dir: &Path) -> Result<PathBuf, Unzip> {
    let done = dir.join("PetImages");
    if done.is_dir() {
        return Ok(done);
    }
    let tmp = dir.join("PetImages.partial");
    let local = |e: String| Unzip::Local(e);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| local(format!("{}: {e}", tmp.display())))?;
    }
    // What to write, with declared sizes, before writing anything.
    let mut wanted: Vec<(usize, PathBuf, bool, u64)> = Vec::new();
    let mut outside = (0usize, String::new());
    let mut too_big = (0usize, String::new());
    for i in 0..z.len() {
        let e = z
            .by_index(i)
            .map_err(|err| Unzip::BadArchive(format!("zip entry {i}: {err}")))?;
        let Some(rel) = e.name().strip_prefix("PetImages/") else {
            continue;
        };
        let rel = PathBuf::from(rel);
        let mut comps = rel.components();
        let top = comps.next().map(|c| c.as_os_str().to_owned());
        if top.as_deref() != Some("Cat".as_ref()) && top.as_deref() != Some("Dog".as_ref()) {
            continue;
        }
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || e.name().contains('\0') {
            outside.0 += 1;
            if outside.1.is_empty() {
                outside.1 = e.name().to_string();
            }
            continue;
        }
        if !e.is_dir() && e.size() > crate::MAX_FILE_BYTES {
            too_big.0 += 1;
            if too_big.1.is_empty() {
                too_big.1 = format!("{} ({} bytes)", e.name(), e.size());
            }
            continue;
        }
        wanted.push((i, rel, e.is_dir(), e.size()));
    }
    if outside.0 > 0 {
        eprintln!(
            "pack: skipped {} archive entries whose names leave PetImages/Cat/ or PetImages/Dog/ \
             (a .. or . in the name), e.g. {}",
            outside.0,
            catdog_guard::escape_name(outside.1.as_bytes())
        );
    }
    if too_big.0 > 0 {
        eprintln!(
            "pack: skipped {} archive entries larger than {} bytes (no photo is), e.g. {}",
            too_big.0,
            crate::MAX_FILE_BYTES,
            catdog_guard::escape_name(too_big.1.as_bytes())
        );
    }
    let total: u64 = wanted.iter().map(|w| w.3).sum();
    if let Some(free) = free_bytes(dir) {
        if total > free {
            return Err(local(format!(
                "unzipping needs {total} bytes but {} has {free} free; free some space",
                dir.display()
            )));
        }
    }
    let r = (|| {
        let mut buf = vec![0u8; 1 << 16];
        for (i, rel, is_dir, size) in &wanted {
            let to = tmp.join(rel);
            if *is_dir {
                fs::create_dir_all(&to).map_err(|err| local(format!("{}: {err}", to.display())))?;
                continue;
            }
            if let Some(p) = to.parent() {
                fs::create_dir_all(p).map_err(|err| local(format!("{}: {err}", p.display())))?;
            }
            let mut e = z
                .by_index(*i)
                .map_err(|err| Unzip::BadArchive(format!("zip entry {i}: {err}")))?;
            let mut out =
                fs::File::create(&to).map_err(|err| local(format!("{}: {err}", to.display())))?;
            let mut got = 0u64;
            loop {
                let n = match e.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        return Err(Unzip::BadArchive(format!("unzipping {}: {err}", e.name())))
                    }
                };
                got += n as u64;
                if got > *size {
                    return Err(Unzip::BadArchive(format!(
                        "{} expands beyond its declared {size} bytes",
                        e.name()
                    )));
                }
                out.write_all(&buf[..n])
                    .map_err(|err| local(format!("{}: {err}", to.display())))?;
            }
        }
        fs::rename(&tmp, &done).map_err(|e| local(format!("{}: {e}", done.display())))
    })();
    if r.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    r.map(|()| done)
}

/// Downloads (or resumes), checks and unzips PetImages under `out/downloads/`; returns the
/// folder to pack (`out/downloads/PetImages`).
pub fn fetch_petimages(out: &Path, quiet: bool) -> Result<PathBuf, String> {
    let url = url();
    let dir = out.join("downloads");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let zip_path = dir.join(PETIMAGES_FILE);
    download(&url, &zip_path, quiet)?;
    let mut z = check_archive(&zip_path)?;
    if !quiet {
        eprintln!(
            "pack: unzipping {} ({} entries)",
            zip_path.display(),
            z.len()
        );
    }
    match extract(&mut z, &dir) {
        Ok(p) => Ok(p),
        Err(Unzip::Local(e)) => Err(e),
        Err(Unzip::BadArchive(e)) => {
            // The same archive would fail the same way on every rerun: move it aside.
            drop(z);
            let aside = dir.join(format!("{PETIMAGES_FILE}.damaged"));
            match fs::rename(&zip_path, &aside) {
                Ok(()) => Err(format!(
                    "{}: {e}; the archive is damaged and was moved aside to {}: run the same \
                     command again to download it again",
                    zip_path.display(),
                    aside.display()
                )),
                Err(_) => Err(format!(
                    "{}: {e}; the archive is damaged: delete it and run the same command again",
                    zip_path.display()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("items 5-9/10"), None);
    }
}

/// Renames a finished download into place, the error naming both paths.
fn rename(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to)
        .map_err(|e| format!("cannot rename {} to {}: {e}", from.display(), to.display()))
}
