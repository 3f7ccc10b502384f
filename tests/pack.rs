//! End-to-end tests of `tools/pack` and of the blob reader's refusals.
//!
//! Every image is made by the test itself (`pack-testgen`, from the packer crate, encodes them on
//! the fly into a temp folder), plus deliberately broken files. The packer and the generator are
//! built once with `cargo build --release -p packer` into this test's own target folder. The real
//! photos in `../shared/data` are packed too when present; when absent that test prints a note and
//! passes (it fails under `CATDOG_REQUIRE_SHARED=1`).

mod common;
use catdog::blob::{Blob, UNLABELED};
use common::{shared_or_skip, TempDir};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// (pack, pack-testgen), built on first use.
fn bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/pack-HASH.
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-q",
                "-p",
                "packer",
                "--bins",
                "--manifest-path",
            ])
            .arg(Path::new(ROOT).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo");
        assert!(st.success(), "building the packer failed");
        let rel = target.join("release");
        (rel.join("pack"), rel.join("pack-testgen"))
    })
}

/// Writes images: each request is "FORMAT VARIANT W H SEED", written to `path`.
fn gen(reqs: &[(&str, PathBuf)]) {
    for (_, p) in reqs {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    }
    let mut child = Command::new(&bins().1)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (spec, p) in reqs {
        input += &format!("{spec} {}\n", p.display());
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "pack-testgen failed");
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn pack(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    let o: Output = Command::new(&bins().0)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into(),
        err: String::from_utf8_lossy(&o.stderr).into(),
    };
    eprintln!("--- pack stdout\n{}--- pack stderr\n{}", r.out, r.err);
    r
}

/// The reason printed for `file`, from `skipped PATH: REASON` lines.
/// `pack` with `args`, paused after listing its inputs (it waits for a line on stdin): the child,
/// its standard error from there on, and what it wrote there until it paused.
fn pack_paused(
    args: &[&dyn AsRef<std::ffi::OsStr>],
    stdout: Stdio,
) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = Command::new(&bins().0)
        .args(args.iter().map(|a| a.as_ref()))
        .env("CATDOG_PACK_PAUSE_AFTER_LISTING", "1")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "pack never paused");
        seen += &line;
        if line.contains("waiting for a line on stdin") {
            break;
        }
    }
    (child, err, seen)
}

fn reason(r: &Run, file: &Path) -> String {
    let prefix = format!("skipped {}: ", file.display());
    let lines: Vec<&str> = r.err.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one skip line for {}",
        file.display()
    );
    lines[0][prefix.len()..].to_string()
}

fn index_of(b: &Blob, file: &Path) -> usize {
    let s = file.to_string_lossy();
    (0..b.len())
        .find(|&i| b.source(i) == s)
        .unwrap_or_else(|| panic!("{s} not in blob"))
}

fn pixel(b: &Blob, i: usize, y: usize, x: usize) -> [u8; 3] {
    let (_, w, c) = b.dims();
    let p = &b.image(i)[(y * w + x) * c..];
    [p[0], p[1], p[2]]
}

fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    (0..3).all(|k| (a[k] as i32 - b[k] as i32).abs() <= tol)
}

fn summary_row(r: &Run, class: &str) -> (usize, usize) {
    let l = r
        .out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(class))
        .unwrap_or_else(|| panic!("no summary row for {class}"));
    let v: Vec<usize> = l
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1])
}

#[test]
fn kaggle_layout_every_format_and_every_bad_input() {
    let t = TempDir::new("pack", "kaggle");
    let d = t.path("train");
    let good = [
        ("jpg pattern 40 30 1", "cat.1.jpg"),
        ("png pattern 40 30 2", "cat.2.png"),
        ("bmp pattern 40 30 3", "cat.3.bmp"),
        ("gif pattern 40 30 4", "cat.4.gif"),
        ("webp pattern 40 30 5", "cat.5.webp"),
        ("jpg pattern 300 200 6", "Cat.6.JPEG"),
        ("png halves 40 30 0", "cat.7.png"),
        ("jpg pattern 30 40 7", "dog.1.jpg"),
        ("png pattern 30 40 8", "dog.2.png"),
        ("jpg pattern 50 50 9", "dog.3.jpg"),
        ("jpg pattern 50 50 10", "dog.4.jpg"),
        ("png pattern 50 50 11", "Dog_5.png"),
    ];
    let reqs: Vec<(&str, PathBuf)> = good.iter().map(|(s, n)| (*s, d.join(n))).collect();
    gen(&reqs);
    gen(&[
        ("jpg pattern 64 64 11", t.path("src.jpg")),
        ("png bomb 100000 100000 0", d.join("dog.50.png")),
        ("jpg pattern 40 30 12", d.join("cat.60.jpg")),
    ]);
    let jpeg = std::fs::read(t.path("src.jpg")).unwrap();
    std::fs::write(d.join("cat.50.jpg"), b"").unwrap(); // zero bytes
    std::fs::write(d.join("cat.51.jpg"), &jpeg[..jpeg.len() / 2]).unwrap(); // truncated
    let mut corrupt = jpeg.clone();
    for b in &mut corrupt[20..200] {
        *b = 0xA5;
    }
    std::fs::write(d.join("cat.52.jpg"), &corrupt).unwrap(); // corrupt headers
    std::fs::write(d.join("dog.51.jpg"), "this is a text file, not a JPEG\n").unwrap();
    std::fs::write(d.join("dog.52.txt"), "notes").unwrap(); // unknown extension
    std::fs::write(d.join("dog.53"), "extension .53").unwrap();
    std::fs::write(d.join("README"), "no extension").unwrap();
    std::fs::write(d.join("Thumbs.db"), [0u8; 16]).unwrap(); // unknown extension, no class
    std::fs::write(d.join("img.jpg"), &jpeg).unwrap(); // no class in its name
    std::os::unix::fs::symlink("/nonexistent/x.jpg", d.join("dog.54.jpg")).unwrap();
    std::fs::create_dir_all(d.join("cat.53.jpg")).unwrap(); // a folder named like an image
                                                            // A pipe named like an image (would block a naive reader forever).
    let fifo = Command::new("mkfifo")
        .arg(d.join("dog.55.jpg"))
        .status()
        .is_ok_and(|s| s.success());
    // Unreadable: mode 000 (root reads it anyway; then it must be packed).
    let unreadable = d.join("cat.60.jpg");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let can_read = std::fs::File::open(&unreadable).is_ok();

    let out = t.path("out");
    let r = pack(&[&d, &"-o", &out, &"--test", &"4", &"--seed", &"3"]);
    assert_eq!(r.code, 0);
    for (file, why) in [
        ("cat.50.jpg", "empty file"),
        ("cat.51.jpg", "truncated JPEG"),
        ("cat.52.jpg", "corrupt JPEG"),
        ("dog.51.jpg", "not an image: the file is text"),
        ("dog.52.txt", "unknown extension .txt"),
        ("dog.53", "unknown extension .53"),
        ("README", "no file extension"),
        ("Thumbs.db", "unknown extension .db"),
        ("img.jpg", "does not start with cat. or dog."),
        ("dog.50.png", "decompression bomb"),
        ("dog.54.jpg", "broken symbolic link"),
        ("cat.53.jpg", "subfolder"),
    ] {
        assert!(
            reason(&r, &d.join(file)).contains(why),
            "{file}: not {why:?}"
        );
    }
    if fifo {
        assert!(reason(&r, &d.join("dog.55.jpg")).contains("not a regular file"));
    }
    let (cats, dogs) = (7 + can_read as usize, 5);
    if can_read {
        println!("note: running as root, a mode-000 file is readable; checked it is packed");
    } else {
        assert!(reason(&r, &unreadable).contains("unreadable"));
    }
    // Summary: packed and skipped per class.
    assert_eq!(summary_row(&r, "cat"), (cats, 4 + !can_read as usize));
    assert_eq!(summary_row(&r, "dog"), (dogs, 5 + fifo as usize));
    assert!(r.out.contains(&format!("summary: {} packed", cats + dogs)));

    let train = Blob::open(&out.join("train.bin")).unwrap();
    let test = Blob::open(&out.join("test.bin")).unwrap();
    assert_eq!(train.len() + test.len(), cats + dogs);
    assert_eq!(test.len(), 4);
    assert_eq!(train.dims(), (128, 128, 3));
    assert_eq!(train.class_names(), vec!["cat", "dog"]);
    for b in [&train, &test] {
        for i in 0..b.len() {
            let name = Path::new(&b.source(i))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase();
            let want = if name.starts_with("cat.") { 0 } else { 1 };
            assert_eq!(b.labels()[i], want, "{name}");
            assert!(b.image(i).iter().any(|&p| p != 0));
        }
    }
    // Colours and geometry survive: left half red, right half blue.
    let (b, i) = match (0..train.len()).any(|i| train.source(i).ends_with("cat.7.png")) {
        true => (&train, index_of(&train, &d.join("cat.7.png"))),
        false => (&test, index_of(&test, &d.join("cat.7.png"))),
    };
    assert!(near(pixel(b, i, 64, 10), [255, 0, 0], 1));
    assert!(near(pixel(b, i, 64, 117), [0, 0, 255], 1));
    // No temporary file left in the output folder.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["test.bin", "train.bin"]);
}

#[test]
fn class_folders_any_case_colour_models_orientation() {
    let t = TempDir::new("pack", "folders");
    let d = t.path("PetImages");
    let c = d.join("Cat");
    let g = d.join("dOG");
    gen(&[
        ("jpg pattern 60 50 1", c.join("1.jpg")),
        ("jpg gray 40 30 0", c.join("2.jpg")),
        ("png gray16 40 30 0", c.join("3.png")),
        ("png rgb16 40 30 0", c.join("4.png")),
        ("png palette 40 30 0", c.join("5.png")),
        ("png rgba 40 30 0", c.join("6.png")),
        ("png graya 40 30 0", c.join("nested/7.png")),
        ("jpg cmyk 40 30 0", g.join("1.jpg")),
        ("gif anim 40 30 0", g.join("2.gif")),
        ("jpg exif6 64 32 0", g.join("3.jpg")),
        ("webp rgba 40 30 0", g.join("4.webp")),
        ("bmp gray 40 30 0", g.join("5.bmp")),
        ("jpg pattern 40 30 2", d.join("Other/1.jpg")),
        ("jpg pattern 40 30 3", d.join("stray.jpg")),
    ]);
    std::fs::write(c.join("Thumbs.db"), [0u8; 32]).unwrap();
    std::fs::write(g.join("666.jpg"), b"").unwrap();
    let out = t.path("pets.bin");
    let r = pack(&[&d, &"-o", &out, &"--size", &"32"]);
    assert_eq!(r.code, 0);
    assert!(reason(&r, &c.join("Thumbs.db")).contains("unknown extension"));
    assert!(reason(&r, &g.join("666.jpg")).contains("empty file"));
    assert!(reason(&r, &d.join("Other")).contains("not a class folder"));
    assert!(reason(&r, &d.join("stray.jpg")).contains("outside the Cat/ and Dog/"));
    assert_eq!(summary_row(&r, "cat"), (7, 1));
    assert_eq!(summary_row(&r, "dog"), (5, 1));
    let b = Blob::open(&out).unwrap();
    assert_eq!(b.dims(), (32, 32, 3));
    assert_eq!(b.len(), 12);
    let at = |p: PathBuf, y, x| pixel(&b, index_of(&b, &p), y, x);
    let lbl = |p: PathBuf| b.labels()[index_of(&b, &p)];
    assert_eq!(lbl(c.join("nested/7.png")), 0);
    assert_eq!(lbl(g.join("5.bmp")), 1);
    // (file, (y, x), expected colour, tolerance, what it checks). Alpha is composited over
    // white: 6.png has a transparent left half and an opaque red right half.
    let (white, red) = ([255, 255, 255], [255, 0, 0]);
    for (file, (y, x), want, tol, what) in [
        (c.join("2.jpg"), (16, 16), [100; 3], 3, "grey JPEG"),
        (c.join("3.png"), (16, 16), [128; 3], 1, "16-bit grey PNG"),
        (c.join("4.png"), (16, 16), red, 1, "16-bit RGB PNG"),
        (c.join("5.png"), (16, 16), [0, 255, 0], 1, "palette PNG"),
        (c.join("6.png"), (16, 2), white, 1, "transparent"),
        (c.join("6.png"), (16, 29), red, 1, "opaque"),
        (g.join("4.webp"), (16, 2), white, 1, "webp alpha"),
        (c.join("nested/7.png"), (16, 16), [100; 3], 1, "grey+alpha"),
        (g.join("1.jpg"), (16, 16), red, 12, "CMYK JPEG"),
        (g.join("2.gif"), (16, 16), red, 1, "GIF first frame"),
        (g.join("5.bmp"), (16, 16), [100; 3], 1, "grey BMP"),
    ] {
        assert!(near(at(file, y, x), want, tol), "{what}");
    }
    // EXIF orientation 6: stored left red / right blue, displayed top red / bottom blue.
    let e = g.join("3.jpg");
    assert!(near(at(e.clone(), 2, 16), [255, 0, 0], 40), "top is red");
    assert!(
        near(at(e.clone(), 29, 16), [0, 0, 255], 40),
        "bottom is blue"
    );
    assert!(
        near(at(e.clone(), 2, 2), at(e, 2, 29), 40),
        "not left/right"
    );
}

#[test]
fn unlabeled_folder_and_forced_unlabeled() {
    let t = TempDir::new("pack", "unlabeled");
    let d = t.path("test1");
    gen(&[
        ("jpg pattern 40 30 1", d.join("10.jpg")),
        ("png pattern 40 30 2", d.join("2.png")),
        ("webp pattern 40 30 3", d.join("1.webp")),
    ]);
    let out = t.path("o");
    let r = pack(&[&d, &"-o", &out]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("unlabeled"));
    let b = Blob::open(&out.join("unlabeled.bin")).unwrap();
    assert_eq!(b.len(), 3);
    assert!(b.labels().iter().all(|&l| l == UNLABELED));
    let names: Vec<String> = (0..3)
        .map(|i| b.source(i).rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["1.webp", "10.jpg", "2.png"], "name order");
    // A split needs labels.
    let r = pack(&[&d, &"-o", &out, &"--test", &"1"]);
    assert_ne!(r.code, 0);
    // --unlabeled ignores cat./dog. names.
    gen(&[("jpg pattern 40 30 4", d.join("cat.1.jpg"))]);
    let r = pack(&[&d, &"-o", &t.path("u.bin"), &"--unlabeled"]);
    assert_eq!(r.code, 0);
    let b = Blob::open(&t.path("u.bin")).unwrap();
    assert_eq!(b.len(), 4);
    assert!(b.labels().iter().all(|&l| l == UNLABELED));
}

fn make_split_folder(t: &TempDir, cats: usize, dogs: usize) -> PathBuf {
    let d = t.path("in");
    let mut reqs = Vec::new();
    for i in 0..cats {
        reqs.push((
            format!("jpg pattern 24 20 {i}"),
            d.join(format!("cat.{i}.jpg")),
        ));
    }
    for i in 0..dogs {
        reqs.push((
            format!("png pattern 20 24 {}", 50 + i),
            d.join(format!("dog.{i}.png")),
        ));
    }
    let reqs: Vec<(&str, PathBuf)> = reqs.iter().map(|(s, p)| (s.as_str(), p.clone())).collect();
    gen(&reqs);
    d
}

#[test]
fn split_is_stratified_deterministic_and_thread_independent() {
    let t = TempDir::new("pack", "split");
    let d = make_split_folder(&t, 30, 20);
    let run = |o: &str, extra: &[&str]| {
        let out = t.path(o);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&d, &"-o"];
        args.push(&out);
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for e in &extra {
            args.push(e);
        }
        let r = pack(&args);
        assert_eq!(r.code, 0);
        (
            std::fs::read(out.join("train.bin")).unwrap(),
            std::fs::read(out.join("test.bin")).unwrap(),
        )
    };
    let a = run("a", &["--test", "10", "--seed", "5", "-j", "1"]);
    let b = run("b", &["--test", "10", "--seed", "5", "-j", "2"]);
    let c = run("c", &["--test", "10", "--seed", "5", "-j", "7"]);
    let f = run("f", &["--test-fraction", "0.2", "--seed", "5", "-j", "3"]);
    assert!(a == b && b == c, "blobs differ with the thread count");
    let sources = |p: &str| {
        let b = Blob::open(&t.path(p)).unwrap();
        (
            (0..b.len())
                .map(|i| b.source(i).to_string())
                .collect::<Vec<_>>(),
            b.payload().to_vec(),
        )
    };
    // Same samples in the same order (the notes differ: they record the flags).
    assert!(
        sources("a/test.bin") == sources("f/test.bin"),
        "--test 10 and --test-fraction 0.2 differ"
    );
    assert!(sources("a/train.bin") == sources("f/train.bin"));
    let other = run("o", &["--test", "10", "--seed", "6"]);
    assert!(a.1 != other.1, "the seed changes nothing");
    drop((f, other));

    let train = Blob::open(&t.path("a/train.bin")).unwrap();
    let test = Blob::open(&t.path("a/test.bin")).unwrap();
    assert_eq!((train.len(), test.len()), (40, 10));
    let count = |b: &Blob, l| b.labels().iter().filter(|&&x| x == l).count();
    assert_eq!((count(&test, 0), count(&test, 1)), (6, 4), "stratified");
    assert_eq!((count(&train, 0), count(&train, 1)), (24, 16));
    let mut all: Vec<String> = (0..40)
        .map(|i| train.source(i).to_string())
        .chain((0..10).map(|i| test.source(i).to_string()))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 50, "train and test overlap or lose samples");
    // The train order is shuffled (not all cats first).
    assert!(train.labels()[..24].contains(&1));
    // Too big a test set is refused.
    let r = pack(&[&d, &"-o", &t.path("x"), &"--test", &"51"]);
    assert_ne!(r.code, 0);
}

#[test]
fn from_raw_keeps_the_originals_samples_in_file_order() {
    let t = TempDir::new("pack", "raw");
    let n = 5;
    let il = 128 * 128 * 3;
    let data: Vec<u8> = (0..n * il).map(|i| (i * 7 % 251) as u8).collect();
    let labels = [0u8, 1, 1, 0, 1];
    std::fs::write(t.path("train_data.raw"), &data).unwrap();
    std::fs::write(t.path("train_label.raw"), labels).unwrap();
    let out = t.path("orig.bin");
    let from_raw = |data: &str, labels: &str, out: &Path| {
        pack(&[&"--from-raw", &t.path(data), &t.path(labels), &"-o", &out])
    };
    let r = from_raw("train_data.raw", "train_label.raw", &out);
    assert_eq!(r.code, 0);
    let b = Blob::open(&out).unwrap();
    assert_eq!(b.len(), n);
    assert_eq!(b.dims(), (128, 128, 3));
    assert_eq!(b.labels(), &labels);
    for i in 0..n {
        assert_eq!(b.image(i), &data[i * il..(i + 1) * il]);
        assert!(b.source(i).ends_with(&format!("train_data.raw[{i}]")));
    }
    // Mismatched files are refused, naming the problem.
    std::fs::write(t.path("short_label.raw"), [0u8, 1]).unwrap();
    std::fs::write(t.path("odd.raw"), &data[..il + 5]).unwrap();
    std::fs::write(t.path("bad_label.raw"), [0u8, 1, 7, 0, 1]).unwrap();
    for (data, labels, says) in [
        (
            "train_data.raw",
            "short_label.raw",
            &["5 images", "2 labels"][..],
        ),
        ("odd.raw", "train_label.raw", &["not a whole number"]),
        ("train_data.raw", "bad_label.raw", &["label 7 at index 2"]),
    ] {
        let r = from_raw(data, labels, &t.path("x.bin"));
        assert_ne!(r.code, 0);
        assert!(
            says.iter().all(|w| r.err.contains(w)),
            "{data} {labels}: {}",
            r.err
        );
    }
    assert!(!t.path("x.bin").exists());
}

#[test]
fn reader_refuses_truncated_damaged_and_foreign_files() {
    let t = TempDir::new("pack", "refuse");
    let d = make_split_folder(&t, 3, 2);
    let good = t.path("good.bin");
    assert_eq!(pack(&[&d, &"-o", &good, &"--size", &"16"]).code, 0);
    let bytes = std::fs::read(&good).unwrap();
    let b = Blob::open(&good).unwrap();
    let po = b.header().payload_offset as usize;
    drop(b);
    let check = |name: &str, content: &[u8], want: &str| {
        let p = t.path(name);
        std::fs::write(&p, content).unwrap();
        let e = Blob::open(&p).unwrap_err();
        println!("{name}: {e}");
        assert!(e.contains(name), "the message names the file: {e}");
        assert!(e.contains(want), "{name}: expected {want:?} in {e:?}");
    };
    check("empty.bin", b"", "too short");
    check("short.bin", &bytes[..40], "too short");
    check("trunc.bin", &bytes[..bytes.len() - 1], "truncated");
    check("halfhdr.bin", &bytes[..po / 2], "truncated");
    let mut long = bytes.clone();
    long.extend_from_slice(b"xx");
    check("long.bin", &long, "more than its header");
    let mut p = bytes.clone();
    p[po + 100] ^= 1;
    check("payload.bin", &p, "payload checksum");
    let mut l = bytes.clone();
    l[po - 1] ^= 1; // inside the metadata/padding
    check("meta.bin", &l, "checksum");
    let mut c = bytes.clone();
    c[16] = 0xFF; // sample count
    check("count.bin", &c, "");
    let mut v = bytes.clone();
    v[8] = 9;
    check("version.bin", &v, "version 9");
    check(
        "photo.jpg",
        &[
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
            0xFF, 0xD9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        "JPEG",
    );
    check("text.bin", &[b'x'; 100], "not a catdog dataset blob");
    // Every single-byte truncation and a flip in every header byte is refused.
    for cut in [0, 1, 63, 64, po - 1, po, po + 1, bytes.len() - 1] {
        let p = t.path("cut.bin");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(Blob::open(&p).is_err(), "cut at {cut} accepted");
    }
    for at in 0..po {
        let mut x = bytes.clone();
        x[at] ^= 0x40;
        let p = t.path("flip.bin");
        std::fs::write(&p, &x).unwrap();
        assert!(Blob::open(&p).is_err(), "flip at {at} accepted");
    }
    // inspect reports the damage and fails.
    let r = pack(&[&"inspect", &t.path("payload.bin")]);
    assert_ne!(r.code, 0);
    assert!(r.out.contains("PAYLOAD BAD"));
    let r = pack(&[&"inspect", &t.path("trunc.bin")]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("truncated"));
}

#[test]
fn inspect_and_dump_round_trip() {
    let t = TempDir::new("pack", "inspect");
    let d = make_split_folder(&t, 3, 3);
    let out = t.path("b.bin");
    assert_eq!(
        pack(&[&d, &"-o", &out, &"--size", &"48x32", &"--crop"]).code,
        0
    );
    let dump_2_to = |png: &str| {
        pack(&[
            &"inspect",
            &out,
            &"--dump",
            &"2",
            &"-o",
            &t.path(png),
            &"--list",
        ])
    };
    // -o into a missing folder fails cleanly; into an existing one works.
    assert_ne!(dump_2_to("dump/x.png").code, 0);
    let r = dump_2_to("x.png");
    assert_eq!(r.code, 0);
    assert!(r.out.contains("samples:   6"));
    assert!(r.out.contains("32x48x3"));
    assert!(r.out.contains("0 = cat: 3, 1 = dog: 3"));
    assert!(r.out.contains("payload ok"));
    assert!(r.out.contains("centre crop"));
    let png = std::fs::read(t.path("x.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Packing the dump again at the same size gives back the very same pixels.
    let again = t.path("again");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::rename(t.path("x.png"), again.join("x.png")).unwrap();
    assert_eq!(
        pack(&[&again, &"-o", &t.path("again.bin"), &"--size", &"48x32"]).code,
        0
    );
    let a = Blob::open(&out).unwrap();
    let b = Blob::open(&t.path("again.bin")).unwrap();
    assert_eq!(a.image(2), b.image(0));
    let r = pack(&[&"inspect", &out, &"--dump", &"6"]);
    assert_ne!(r.code, 0);
}

#[test]
fn nothing_packable_or_unwritable_output_fails() {
    let t = TempDir::new("pack", "fail");
    let d = t.path("junk");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cat.1.jpg"), b"").unwrap();
    std::fs::write(d.join("dog.1.jpg"), b"garbage").unwrap();
    let r = pack(&[&d, &"-o", &t.path("o")]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("nothing could be packed"));
    assert!(!t.path("o/train.bin").exists());
    // An output path under a regular file cannot be created.
    let d = make_split_folder(&t, 2, 2);
    std::fs::write(t.path("file"), b"x").unwrap();
    let r = pack(&[&d, &"-o", &t.path("file/sub")]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("cannot"));
    // --max-pixels applies to ordinary images too.
    let r = pack(&[&d, &"-o", &t.path("mp"), &"--max-pixels", &"100"]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("absurd dimensions"));
    // Missing input folder.
    assert_ne!(pack(&[&t.path("nope"), &"-o", &t.path("o")]).code, 0);
}

#[test]
fn a_file_that_vanishes_mid_run_is_skipped() {
    let t = TempDir::new("pack", "vanish");
    let d = make_split_folder(&t, 4, 4);
    let victim = d.join("cat.2.jpg");
    let (mut child, mut err, mut seen) = pack_paused(&[&d, &"-o", &t.path("o")], Stdio::piped());
    std::fs::remove_file(&victim).unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    seen += &rest;
    println!("{seen}");
    assert!(out.status.success());
    assert!(seen.contains(&format!("skipped {}: vanished", victim.display())));
    let b = Blob::open(&t.path("o/train.bin")).unwrap();
    assert_eq!(b.len(), 7);
}

#[test]
fn an_interrupted_run_leaves_the_old_blob_and_no_debris() {
    let t = TempDir::new("pack", "interrupt");
    let d = make_split_folder(&t, 3, 3);
    let out = t.path("o");
    assert_eq!(pack(&[&d, &"-o", &out]).code, 0);
    let before = std::fs::read(out.join("train.bin")).unwrap();
    let (mut child, _err, _) = pack_paused(&[&d, &"-o", &out, &"--size", &"64"], Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(out.join("train.bin")).unwrap(), before);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "debris left");
    // A blob temp file left by a run killed while writing (pid 0x7fffffff is never alive) is
    // removed by the next run; a file that only looks similar is left alone.
    std::fs::write(out.join(".train.bin.2147483647.tmp"), b"half").unwrap();
    std::fs::write(out.join(".notes.2147483647.tmp"), b"mine").unwrap();
    let r = pack(&[&d, &"-o", &out]);
    assert_eq!(r.code, 0);
    assert!(r.err.contains("left by an interrupted run"));
    assert!(!out.join(".train.bin.2147483647.tmp").exists());
    assert!(out.join(".notes.2147483647.tmp").exists());
}

#[test]
fn real_photos_when_present() {
    let t = TempDir::new("pack", "real");
    if let Some(kaggle) = shared_or_skip("real_photos_when_present", "data/dogs-vs-cats/train") {
        let r = pack(&[&kaggle, &"-o", &t.path("k"), &"--test", &"500", &"-q"]);
        assert_eq!(r.code, 0);
        let train = Blob::open(&t.path("k/train.bin")).unwrap();
        let test = Blob::open(&t.path("k/test.bin")).unwrap();
        let n = std::fs::read_dir(&kaggle).unwrap().count();
        let (_, skipped) = summary_row(&r, "cat");
        assert_eq!(
            train.len() + test.len() + skipped + summary_row(&r, "dog").1,
            n
        );
        assert_eq!(test.len(), 500);
        println!("packed {} real Kaggle photos", train.len() + test.len());
    }
    if let Some(pets) = shared_or_skip("real_photos_when_present", "data/pet-images") {
        let r = pack(&[&pets, &"-o", &t.path("pets.bin"), &"-q"]);
        assert_eq!(r.code, 0);
        let b = Blob::open(&t.path("pets.bin")).unwrap();
        assert!(!b.is_empty());
        assert!(b.labels().contains(&0) && b.labels().contains(&1));
        println!("packed {} real PetImages photos", b.len());
    }
}
