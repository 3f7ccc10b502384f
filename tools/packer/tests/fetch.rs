//! `tools/pack --fetch` against unlucky downloads and hostile archives (issue 23, groups 5, 8,
//! 9, 10): entries with `..`, huge entries, damaged archives, web pages served as the archive,
//! a complete `.part` answered with 416, a server that stalls after its headers.

#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../../../tests/common/http.rs"]
mod http;
use common::{assert_ok, assert_refused, stderr_of, tmp};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const ZIP: &str = "kagglecatsanddogs_5340.zip";

/// `pack --fetch petimages --size 16 -q -o OUT` with the archive at `url`.
fn fetch(out: &Path, url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pack"))
        .args(["--fetch", "petimages", "--size", "16", "-q", "-o"])
        .arg(out)
        .env("CATDOG_DATA_URL", url)
        .env("CATDOG_TEST_FETCH_IDLE_S", "1")
        .output()
        .unwrap()
}

/// `OUT/downloads/` holding `zip` as the downloaded archive (nothing is fetched then).
fn downloaded(tag: &str, zip: &[u8]) -> (PathBuf, PathBuf) {
    let out = tmp(tag);
    let dl = out.join("downloads");
    std::fs::create_dir_all(&dl).unwrap();
    std::fs::write(dl.join(ZIP), zip).unwrap();
    (out, dl)
}

/// PetImages entries, `n` photos a class.
fn photos(n: u32) -> Vec<(String, Vec<u8>)> {
    let mut e = Vec::new();
    for i in 0..n {
        e.push((
            format!("PetImages/Cat/{i}.png"),
            http::png(20, 20, false, i),
        ));
        e.push((
            format!("PetImages/Dog/{i}.png"),
            http::png(20, 20, true, 100 + i),
        ));
    }
    e
}

/// Group 5: an entry whose name climbs out with `..` is skipped: nothing is written outside
/// the unzip folder (not over the archive being read, nor into the class folders).
#[test]
fn archive_entries_that_leave_their_folder_are_skipped() {
    let mut e = photos(3);
    e.push(("PetImages/Cat/../../evil.txt".into(), b"x".to_vec()));
    e.push((
        format!("PetImages/Cat/../../{ZIP}"),
        b"overwritten".to_vec(),
    ));
    e.push((
        "PetImages/Dog/../Cat/9.png".into(),
        http::png(20, 20, true, 9),
    ));
    let zip = http::make_zip(&e);
    let (out, dl) = downloaded("fetch-r2-dotdot", &zip);
    let o = fetch(&out, &http::dead_url());
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(err.contains("skipped 3 archive entries"), "{err}");
    assert!(!dl.join("evil.txt").exists() && !out.join("evil.txt").exists());
    assert_eq!(
        std::fs::read(dl.join(ZIP)).unwrap(),
        zip,
        "the archive was overwritten"
    );
    assert!(
        !dl.join("PetImages/Cat/9.png").exists(),
        "a dog entered Cat/"
    );
    let b = catdog::blob::Blob::open(&out.join("train.bin")).unwrap();
    let t = catdog::blob::Blob::open(&out.join("test.bin")).unwrap();
    assert_eq!(b.len() + t.len(), 6);
    std::fs::remove_dir_all(&out).ok();
}

/// Group 9: an entry larger than the packer reads is skipped before anything is written (a
/// small archive that expands to 513 MiB).
#[test]
fn an_entry_larger_than_a_photo_can_be_is_not_unzipped() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in photos(3) {
            z.start_file(name, opts).unwrap();
            z.write_all(&data).unwrap();
        }
        z.start_file("PetImages/Cat/huge.jpg", opts.large_file(true))
            .unwrap();
        let mib = vec![0u8; 1 << 20];
        for _ in 0..513 {
            z.write_all(&mib).unwrap();
        }
        z.finish().unwrap();
    }
    let zip = buf.into_inner();
    assert!(zip.len() < 2 << 20, "{} bytes", zip.len());
    let (out, dl) = downloaded("fetch-r2-bomb", &zip);
    let o = fetch(&out, &http::dead_url());
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(
        err.contains("larger than") && err.contains("huge.jpg"),
        "{err}"
    );
    assert!(!dl.join("PetImages/Cat/huge.jpg").exists());
    std::fs::remove_dir_all(&out).ok();
}

/// Group 10: an archive that fails to unzip (a checksum mismatch) is moved aside, the message
/// says so, and no half-made folder is left to be packed by the next run.
#[test]
fn a_damaged_archive_is_moved_aside_and_nothing_half_made_is_kept() {
    let mut zip = http::make_zip(&photos(3));
    // Damage the third entry's data (stored, so its bytes are in the clear).
    let at = zip
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"\x89PNG")
        .nth(2)
        .unwrap()
        .0;
    zip[at + 40] ^= 0xff;
    let (out, dl) = downloaded("fetch-r2-damaged", &zip);
    let o = fetch(&out, &http::dead_url());
    let line = assert_refused(&o, &[ZIP, "moved aside"]);
    assert!(line.contains("run the same command again"), "{line}");
    assert!(!dl.join(ZIP).exists());
    assert!(dl.join(format!("{ZIP}.damaged")).is_file());
    assert!(!dl.join("PetImages").exists() && !dl.join("PetImages.partial").exists());
    std::fs::remove_dir_all(&out).ok();
}

/// A server on 127.0.0.1 that answers request k (0, 1, ...) with `reply(k, range start)`: the
/// bytes to send, and whether to hold the connection open afterwards (a stall). Returns the
/// URL and the Range headers seen.
fn server(
    reply: impl Fn(usize, u64) -> (Vec<u8>, bool) + Send + 'static,
) -> (String, Arc<Mutex<Vec<u64>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{ZIP}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (k, conn) in l.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let mut rd = BufReader::new(s.try_clone().unwrap());
            let mut start = 0u64;
            loop {
                let mut line = String::new();
                if rd.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    start = v.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
            }
            log.lock().unwrap().push(start);
            let (bytes, stall) = reply(k, start);
            let _ = s.write_all(&bytes);
            let _ = s.flush();
            if stall {
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    drop(s);
                });
            } else {
                let _ = s.shutdown(std::net::Shutdown::Write);
                let _ = rd.read(&mut [0u8; 1]);
            }
        }
    });
    (url, seen)
}

fn ok_head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Group 8: a server that stalls after its headers and half the body: after the idle limit
/// the download counts as dropped and is resumed with a Range request, and completes.
#[test]
fn a_download_that_stalls_after_its_headers_is_resumed() {
    let zip = http::make_zip(&photos(3));
    let body = zip.clone();
    let (url, seen) = server(move |k, start| {
        let start = start as usize;
        if k == 0 {
            let mut r = ok_head(body.len());
            r.extend_from_slice(&body[..body.len() / 2]);
            (r, true)
        } else {
            let mut r = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes \
                 {start}-{}/{}\r\nConnection: close\r\n\r\n",
                body.len() - start,
                body.len() - 1,
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body[start..]);
            (r, false)
        }
    });
    let out = tmp("fetch-r2-stall");
    let t = std::time::Instant::now();
    let o = fetch(&out, &url);
    assert_ok(&o);
    assert!(t.elapsed().as_secs() < 30, "{:?}", t.elapsed());
    let err = stderr_of(&o);
    assert!(err.contains("no data for 1 s"), "{err}");
    assert_eq!(*seen.lock().unwrap(), vec![0, zip.len() as u64 / 2]);
    assert_eq!(std::fs::read(out.join("downloads").join(ZIP)).unwrap(), zip);
    std::fs::remove_dir_all(&out).ok();
}

/// Group 10: a web page answered with 200 never gets the archive's name (nor stays as a
/// `.part` to be resumed); a complete `.part` answered with 416 is taken as complete.
#[test]
fn only_a_zip_gets_the_archive_name_and_a_complete_part_is_kept() {
    let page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>".to_vec();
    let (url, _) = server(move |_, _| {
        let mut r = ok_head(page.len());
        r.extend_from_slice(&page);
        (r, false)
    });
    let out = tmp("fetch-r2-html");
    let o = fetch(&out, &url);
    assert_refused(&o, &["web page"]);
    let dl = out.join("downloads");
    assert!(!dl.join(ZIP).exists() && !dl.join(format!("{ZIP}.part")).exists());
    // A .part that is the whole archive; the server answers its Range with 416.
    let zip = http::make_zip(&photos(3));
    std::fs::write(dl.join(format!("{ZIP}.part")), &zip).unwrap();
    let (url, seen) = server(move |_, _| {
        (
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            false,
        )
    });
    let o = fetch(&out, &url);
    assert_ok(&o);
    assert_eq!(seen.lock().unwrap().len(), 1, "downloaded again");
    assert_eq!(std::fs::read(dl.join(ZIP)).unwrap(), zip);
    std::fs::remove_dir_all(&out).ok();
}
