//! A local stand-in for the PetImages download, for the first-run tests (there is no outside
//! network in tests): a small zip made here, served over HTTP on 127.0.0.1 by a thread, with
//! `Range` support and an optional interrupted first response; and the PNGs to put in it. Shared
//! by the tests that drive the `model` binary on photos.
#![allow(dead_code)]

#[path = "numbers.rs"]
mod numbers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A stored (uncompressed) zip archive of `entries` (name, bytes), as any zip tool reads it.
pub fn make_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let n = name.as_bytes();
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(n.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(n);
        out.extend_from_slice(data);
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(n);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `w` x `h` RGB PNG: cats bluish, dogs reddish, with some seeded noise.
pub fn png(w: u32, h: u32, dog: bool, seed: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    let mut rng = numbers::Rng::new(seed.into());
    for _ in 0..w * h {
        let n = (rng.next_u64() >> 58) as u8; // 0..63
        let (r, b) = if dog { (180, 60) } else { (60, 180) };
        px.extend_from_slice(&[r + n, 100 + n, b + n]);
    }
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(&px).unwrap();
    }
    out
}

/// A small PetImages-like archive: `per_class` photos in `PetImages/Cat/` and `PetImages/Dog/`,
/// plus what the real one has that cannot be packed: a zero-byte photo, a photo that is not an
/// image, and a `Thumbs.db`.
pub fn petimages_zip(per_class: u32) -> Vec<u8> {
    let mut e: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..per_class {
        e.push((format!("PetImages/Cat/{i}.png"), png(40, 30, false, i)));
        e.push((
            format!("PetImages/Dog/{i}.png"),
            png(30, 40, true, 1000 + i),
        ));
    }
    e.push(("PetImages/Cat/666.jpg".into(), Vec::new()));
    e.push((
        "PetImages/Dog/11702.jpg".into(),
        b"\xff\xd8\xff\xe0 this is not really a JPEG".to_vec(),
    ));
    e.push(("PetImages/Cat/Thumbs.db".into(), vec![0u8; 64]));
    e.push(("readme[1].txt".into(), b"not part of the photos".to_vec()));
    make_zip(&e)
}

/// What the server saw: one entry per request, the `Range` header's value (or empty).
pub type Log = Arc<Mutex<Vec<String>>>;

/// Serves `body` at `http://127.0.0.1:PORT/NAME` on a thread, for `requests` requests. With
/// `cut_first`, the first response promises the whole body but the connection is closed after
/// half of it (an interrupted download); later requests honour `Range: bytes=N-` with 206.
pub fn serve(body: Vec<u8>, name: &str, requests: usize, cut_first: bool) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{name}", listener.local_addr().unwrap());
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for (k, conn) in listener.incoming().take(requests).enumerate() {
            let Ok(stream) = conn else { continue };
            let range = handle(stream, &body, k == 0 && cut_first);
            seen.lock().unwrap().push(range);
        }
    });
    (url, log)
}

fn handle(mut stream: TcpStream, body: &[u8], cut: bool) -> String {
    let mut rd = BufReader::new(stream.try_clone().unwrap());
    let mut range = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = v.trim().to_string();
            }
        }
    }
    let start: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - start,
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    let _ = stream.write_all(head.as_bytes());
    let rest = &body[start..];
    let send = if cut { &rest[..rest.len() / 2] } else { rest };
    let _ = stream.write_all(send);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = rd.read(&mut [0u8; 1]);
    range
}

/// A URL on 127.0.0.1 where nothing listens: port 1 (tcpmux, never served on a test
/// machine), not a port just released, which a parallel test's server could take.
pub fn dead_url() -> String {
    assert!(
        TcpStream::connect("127.0.0.1:1").is_err(),
        "something listens on 127.0.0.1:1"
    );
    "http://127.0.0.1:1/kagglecatsanddogs_5340.zip".to_string()
}
