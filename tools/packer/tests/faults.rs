//! Faults and misuse of `tools/pack` (issue 13): closed pipes, absurd `--jobs`, half-written
//! pairs, outputs that name an input, exit codes, hostile file names.

#[path = "../../../tests/common/mod.rs"]
mod common;
use common::{
    assert_fifo_and_links_kept, assert_ok, assert_refused, dev_full, fifo_and_link,
    first_line_then_close, have_dev_full, mkfifo, names_in, stderr_after_exit, stderr_of,
    synthetic_blob, tmp,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pack"))
}

fn testgen(reqs: &[(&str, &Path)]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pack-testgen"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (spec, p) in reqs {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        input += &format!("{spec} {}\n", p.display());
    }
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "pack-testgen failed");
}

/// A Kaggle-style folder of `n` small PNG photos (cat.I.png / dog.I.png).
fn photos(dir: &Path, n: usize) {
    photos_at(n, |dog, i| {
        dir.join(format!("{}.{i}.png", if dog { "dog" } else { "cat" }))
    });
}

/// `n` small PNG photos, cats at even `i` and dogs at odd, photo `i` at `path(dog, i)`.
fn photos_at(n: usize, path: impl Fn(bool, usize) -> std::path::PathBuf) {
    let reqs: Vec<(String, std::path::PathBuf)> = (0..n)
        .map(|i| (format!("png pattern 20 16 {i}"), path(i % 2 == 1, i)))
        .collect();
    let r: Vec<(&str, &Path)> = reqs
        .iter()
        .map(|(s, p)| (s.as_str(), p.as_path()))
        .collect();
    testgen(&r);
}

/// `pack SRC -o OUT FLAGS`.
fn pack_to(src: &Path, out: &Path, flags: &[&str]) -> Command {
    let mut c = pack();
    c.arg(src).arg("-o").arg(out).args(flags);
    c
}

/// [`pack_to`], run to its end.
fn packed(src: &Path, out: &Path, flags: &[&str]) -> Output {
    pack_to(src, out, flags).output().unwrap()
}

/// A fresh temporary folder `tag` with `n` photos (see [`photos`]) in its `src`; both paths.
fn tmp_with_photos(tag: &str, n: usize) -> (PathBuf, PathBuf) {
    let dir = tmp(tag);
    let src = dir.join("src");
    photos(&src, n);
    (dir, src)
}

/// A fresh temporary folder `tag` holding a synthetic blob `name` of `n` 8x8 images; both paths.
fn tmp_with_blob(tag: &str, name: &str, n: usize) -> (PathBuf, PathBuf) {
    let dir = tmp(tag);
    let blob = dir.join(name);
    synthetic_blob(&blob, n, 8, 1);
    (dir, blob)
}

/// `pack --from-raw IMAGES LABELS --size 8 -o OUT`.
fn from_raw(images: &Path, labels: &Path, out: &Path) -> Command {
    let mut c = pack();
    c.arg("--from-raw").arg(images).arg(labels);
    c.args(["--size", "8", "-o"]).arg(out);
    c
}

/// `tools/pack inspect --list | head -1`: a quiet stop with 141, not a panic (exit 101).
#[test]
fn inspect_list_into_a_closed_pipe_stops_quietly() {
    let (dir, blob) = tmp_with_blob("pack-faults-pipe", "big.bin", 6000);
    let mut child = pack()
        .args(["inspect", "--list"])
        .arg(&blob)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    first_line_then_close(&mut child);
    let (st, err) = stderr_after_exit(&mut child, 60, "inspect into a closed pipe");
    assert_eq!(st.code(), Some(141), "{err}");
    assert!(err.is_empty(), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// stdout on a full disk: one `error:` line, exit 2.
#[test]
fn inspect_into_a_full_stdout_reports_one_error() {
    if !have_dev_full() {
        return;
    }
    let (dir, blob) = tmp_with_blob("pack-faults-full", "a.bin", 4);
    let o = pack()
        .arg("inspect")
        .arg(&blob)
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_refused(&o, &["standard output", "No space left"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad input exits 2 in `tools/pack` as in `model`: a missing source folder, a damaged blob.
#[test]
fn bad_input_exits_2() {
    let dir = tmp("pack-faults-exit");
    let o = packed(&dir.join("no-such-folder"), &dir.join("out"), &[]);
    assert_refused(&o, &["no-such-folder"]);
    let blob = dir.join("a.bin");
    synthetic_blob(&blob, 4, 8, 1);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF; // a damaged payload: inspect reports it, then fails
    std::fs::write(&blob, &bytes).unwrap();
    let o = pack().arg("inspect").arg(&blob).output().unwrap();
    assert_refused(&o, &["a.bin", "payload checksum mismatch"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--jobs` is capped like the trainer's `--threads` (1 to 256), refused before any listing or
/// decoding, and `--help` says so.
#[test]
fn jobs_are_capped_and_help_says_so() {
    let (dir, src) = tmp_with_photos("pack-faults-jobs", 4);
    for jobs in ["100000", "0", "257"] {
        let t = Instant::now();
        let o = packed(&src, &dir.join("out"), &["--jobs", jobs, "--size", "8"]);
        assert_refused(&o, &["--jobs", jobs, "between 1 and 256"]);
        assert!(t.elapsed() < Duration::from_secs(20));
        assert!(!dir.join("out/unlabeled.bin").exists() && !dir.join("out/train.bin").exists());
    }
    let o = packed(
        &src,
        &dir.join("out"),
        &["--jobs", "256", "--size", "8", "-q"],
    );
    assert_ok(&o);
    let help = String::from_utf8(pack().arg("--help").output().unwrap().stdout).unwrap();
    assert!(help.contains("1 to 256"), "{help}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--from-raw` with a FIFO for the labels (or the images) is refused at once, not read forever.
#[test]
fn from_raw_refuses_a_fifo_without_blocking() {
    let dir = tmp("pack-faults-fifo");
    let data = dir.join("d.raw");
    std::fs::write(&data, vec![7u8; 2 * 8 * 8 * 3]).unwrap();
    let fifo = dir.join("labels.raw");
    mkfifo(&fifo);
    for (d, l) in [(&data, &fifo), (&fifo, &data)] {
        let mut child = from_raw(d, l, &dir.join("o.bin"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (st, err) = stderr_after_exit(&mut child, 30, "pack --from-raw on a FIFO");
        assert_eq!(st.code(), Some(2), "{err}");
        assert!(err.contains("named pipe"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `inspect X --dump 0 -o X` is refused and X survives (it was truncated in place under its
/// own mapping: a bus error and a 0-byte file); a dump elsewhere is written atomically.
#[test]
fn dump_onto_its_own_blob_is_refused_and_dumps_are_atomic() {
    let (dir, blob) = tmp_with_blob("pack-faults-dump", "x.bin", 3);
    let before = std::fs::read(&blob).unwrap();
    let dump = |i: &str, to: &Path| {
        let mut c = pack();
        c.arg("inspect")
            .arg(&blob)
            .args(["--dump", i, "-o"])
            .arg(to);
        c.output().unwrap()
    };
    let o = dump("0", &blob);
    assert_refused(&o, &["-o", "same file as the blob"]);
    assert_eq!(std::fs::read(&blob).unwrap(), before);
    let png = dir.join("s.png");
    let o = dump("1", &png);
    assert_ok(&o);
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    assert_entries(&dir, 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// Outputs are checked before decoding: `-o DIR` where DIR/train.bin is a folder, an output
/// name whose temporary name is too long, `--from-raw` onto its own input.
#[test]
fn bad_outputs_are_refused_before_decoding() {
    let (dir, src) = tmp_with_photos("pack-faults-out", 6);
    std::fs::create_dir_all(dir.join("out/train.bin")).unwrap();
    let o = packed(&src, &dir.join("out"), &["--test", "2", "--size", "8"]);
    assert_refused(&o, &["train.bin", "is a directory"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("summary"),
        "decoded first"
    );
    let long = dir.join(format!("{}.bin", "b".repeat(245)));
    let o = packed(&src, &long, &["--size", "8"]);
    assert_refused(&o, &["too long"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("summary"),
        "decoded first"
    );
    let raw = dir.join("d.bin");
    std::fs::write(&raw, vec![9u8; 2 * 8 * 8 * 3]).unwrap();
    std::fs::write(dir.join("l.raw"), [0u8, 1]).unwrap();
    let o = from_raw(&raw, &dir.join("l.raw"), &raw).output().unwrap();
    assert_refused(&o, &["same file as the raw image file"]);
    assert_eq!(std::fs::read(&raw).unwrap(), vec![9u8; 2 * 8 * 8 * 3]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Hostile file names: a line break cannot forge a second `skipped` line or a second `--list`
/// row, a terminal escape sequence is not passed through, and a name that is not UTF-8 is
/// stored byte for byte (it still names its file) and shown escaped.
#[test]
fn file_names_are_stored_as_bytes_and_printed_escaped() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp("pack-faults-names");
    let src = dir.join("src");
    testgen(&[
        ("png pattern 20 16 1", &src.join("Cat/a.png")),
        ("png pattern 20 16 2", &src.join("Cat/b.png")),
        ("png pattern 20 16 3", &src.join("Dog/c.png")),
        ("png pattern 20 16 4", &src.join("Dog/d.png")),
    ]);
    let non_utf8 = src.join("Cat").join(OsStr::from_bytes(b"\xffcat\xfe.png"));
    std::fs::rename(src.join("Cat/a.png"), &non_utf8).unwrap();
    std::fs::rename(src.join("Cat/b.png"), src.join("Cat/two\nrows.png")).unwrap();
    std::fs::rename(src.join("Dog/c.png"), src.join("Dog/\x1b[31mred.png")).unwrap();
    std::fs::write(src.join("Dog/bad\nskipped forged: x.png"), b"not a png").unwrap();
    let out = dir.join("all.bin");
    let o = packed(&src, &out, &["--size", "8", "-q"]);
    let err = stderr_of(&o);
    assert!(o.status.success(), "{err}");
    let skipped: Vec<&str> = err.lines().filter(|l| l.starts_with("skipped")).collect();
    assert_eq!(skipped.len(), 1, "{err}");
    assert!(
        skipped[0].contains("Dog/bad\\nskipped forged: x.png: "),
        "{err}"
    );
    let b = catdog::blob::Blob::open(&out).unwrap();
    assert_eq!(b.len(), 4);
    let raw = (0..4)
        .map(|i| b.source_bytes(i).to_vec())
        .find(|s| s.ends_with(b"\xffcat\xfe.png"))
        .expect("the non-UTF-8 name, byte for byte");
    assert!(Path::new(OsStr::from_bytes(&raw)).exists());
    let shown: Vec<String> = (0..4).map(|i| b.source(i)).collect();
    assert!(
        shown.iter().any(|s| s.ends_with("Cat/\\xffcat\\xfe.png")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|s| s.ends_with("Cat/two\\nrows.png")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|s| s.ends_with("Dog/\\x1b[31mred.png")),
        "{shown:?}"
    );
    let o = pack()
        .arg("inspect")
        .arg("--list")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(
        !o.stdout.contains(&0x1b),
        "an escape sequence reached the terminal"
    );
    let text = String::from_utf8(o.stdout).expect("escaped output is UTF-8");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.split('\t').count() == 3 && l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(!text.contains("\nrows.png"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A split is atomic as a pair: when writing test.bin fails (here: the file size limit, as on
/// a full disk, kills the run), the old train.bin and test.bin are both untouched (train.bin
/// was renamed into place before test.bin was written). The next run removes the leftover
/// temporary file and says so.
#[test]
fn a_split_that_fails_half_way_leaves_the_old_pair_untouched() {
    use std::os::unix::process::CommandExt;
    let (dir, src) = tmp_with_photos("pack-faults-pair", 10);
    let out = dir.join("out");
    let split = |seed: &str| {
        pack_to(
            &src,
            &out,
            &["--test", "8", "--size", "8", "-q", "--seed", seed],
        )
    };
    let o = split("1").output().unwrap();
    assert_ok(&o);
    let (train0, test0) = (
        std::fs::read(out.join("train.bin")).unwrap(),
        std::fs::read(out.join("test.bin")).unwrap(),
    );
    // test.bin (8 samples) is larger than train.bin (2): a limit between the two sizes lets
    // train.bin be written and stops the run in the middle of test.bin.
    assert!(test0.len() > train0.len() + 512);
    let limit = (train0.len() + 256) as u64;
    let mut c = split("2");
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &r);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(!o.status.success(), "{}", stderr_of(&o));
    assert_eq!(
        std::fs::read(out.join("train.bin")).unwrap(),
        train0,
        "train.bin replaced"
    );
    assert_eq!(std::fs::read(out.join("test.bin")).unwrap(), test0);
    // The next run cleans up what the killed one left, and writes a new pair.
    let o = split("2").output().unwrap();
    let err = stderr_of(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert_entries(&out, 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// Each half of a split records the other's count and payload checksum; `model train` refuses a
/// train.bin with the test.bin of another split, and `inspect` shows the record.
#[test]
fn each_half_of_a_split_records_its_sibling() {
    use catdog::blob::{check_pair, Blob};
    let (dir, src) = tmp_with_photos("pack-faults-sibling", 12);
    for (seed, sub) in [("1", "a"), ("2", "b")] {
        let o = packed(
            &src,
            &dir.join(sub),
            &["--test", "4", "--size", "8", "-q", "--seed", seed],
        );
        assert_ok(&o);
    }
    let open = |p: &str| Blob::open(&dir.join(p)).unwrap();
    let (ta, sa) = (open("a/train.bin"), open("a/test.bin"));
    let sib = ta.sibling().expect("train.bin records test.bin");
    assert!(sib.is_test && sib.count == 4 && sib.payload_crc == sa.header().payload_crc);
    assert!(check_pair(&ta, &sa).is_ok());
    let e = check_pair(&ta, &open("b/test.bin")).unwrap_err();
    assert!(
        e.contains("are not a pair") && e.contains("pack both again"),
        "{e}"
    );
    // A blob that records no sibling (from --from-raw, or an older pack) against a half of a
    // pair: the half's record decides.
    assert!(check_pair(&open("b/train.bin"), &sa).is_err());
    let o = pack()
        .arg("inspect")
        .arg(dir.join("a/test.bin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("pair:      packed together with a training set of 8 samples"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Asserts that folder `dir` holds `n` entries (no temporary files left).
fn assert_entries(dir: &Path, n: usize) {
    let names = names_in(dir);
    assert_eq!(names.len(), n, "{names:?}");
}

/// Issue 23, group 1: a FIFO or a symbolic link given as `-o` (a pack to a file, `pack photos`,
/// `inspect --dump`) is refused before any decoding, exit 2, and stays as it was.
#[test]
fn outputs_that_are_not_regular_files_are_refused() {
    let (dir, src) = tmp_with_photos("pack-r2-outputs", 4);
    let [fifo, target, link] = fifo_and_link(&dir, "pipe.bin", "precious.bin", "link.bin");
    for out in [&fifo, &link] {
        let what = if out == &fifo {
            "named pipe"
        } else {
            "symbolic link"
        };
        let o = packed(&src, &out, &[]);
        assert_refused(&o, &["-o", what]);
        assert!(o.stdout.is_empty(), "decoded before the refusal");
        let o = pack()
            .args(["photos", "-q"])
            .arg(&src)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        assert_refused(&o, &["-o", what]);
    }
    let good = dir.join("good.bin");
    assert_ok(&packed(&src, &good, &[]));
    let png_link = dir.join("s.png");
    std::os::unix::fs::symlink(&target, &png_link).unwrap();
    let o = pack()
        .args(["inspect", "--dump", "0", "-o"])
        .arg(&png_link)
        .arg(&good)
        .output()
        .unwrap();
    assert_refused(&o, &["-o", "symbolic link"]);
    assert_fifo_and_links_kept(&fifo, &target, &[&link, &png_link]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 23, group 13: a split that would write an empty blob (`--test 0`, a fraction that
/// rounds to 0, `--test` equal to every photo) is refused at pack time; nothing is written.
#[test]
fn a_split_that_leaves_a_blob_empty_is_refused() {
    let (dir, src) = tmp_with_photos("pack-r2-empty-split", 6);
    for split in [
        &["--test", "0"][..],
        &["--test-fraction", "0.01"],
        &["--test", "6"],
        &["--test-fraction", "1"],
    ] {
        let out = dir.join("out");
        let o = packed(&src, &out, split);
        let want = if split[1] == "6" || split[1] == "1" {
            "none in train.bin"
        } else {
            "no sample"
        };
        assert_refused(&o, &[want]);
        assert!(
            !out.join("train.bin").exists() && !out.join("test.bin").exists(),
            "{split:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 23, group 7: photos of one class are refused when split (training data), naming the
/// missing class, and packed with a warning when not.
#[test]
fn one_class_photos_are_refused_for_a_split_and_warned_otherwise() {
    let (dir, src) = tmp_with_photos("pack-r2-one-class", 6);
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("dog.") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let out = dir.join("out");
    let o = packed(&src, &out, &["--test", "1"]);
    assert_refused(&o, &["no dog photo"]);
    assert!(!out.join("train.bin").exists());
    let o = packed(&src, &dir.join("cats.bin"), &[]);
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(
        err.contains("warning") && err.contains("no dog photo"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 23, group 3: a symbolic link inside one class folder that leads into the other does
/// not relabel that folder's photos (the alias is skipped, with a reason); a class folder that
/// is another through a link is refused, naming both.
#[test]
fn a_link_into_the_other_class_folder_does_not_relabel_photos() {
    let dir = tmp("pack-r2-alias");
    let src = dir.join("PetImages");
    photos_at(6, |dog, i| {
        src.join(format!("{}/{i}.png", if dog { "Dog" } else { "Cat" }))
    });
    std::os::unix::fs::symlink("../Dog", src.join("Cat/aaa-alias")).unwrap();
    let out = dir.join("all.bin");
    let o = packed(&src, &out, &[]);
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(
        err.contains("aaa-alias") && err.contains("other class folder"),
        "{err}"
    );
    let b = catdog::blob::Blob::open(&out).unwrap();
    assert_eq!(b.label_counts()[..2], [3, 3], "dogs packed as cats");
    for i in 0..b.len() {
        let want = if b.source(i).contains("/Dog/") { 1 } else { 0 };
        assert_eq!(b.labels()[i], want, "{}", b.source(i));
    }
    // Dog/ itself a link to Cat/: refused.
    let src2 = dir.join("Twins");
    std::fs::create_dir_all(&src2).unwrap();
    std::os::unix::fs::symlink(src.join("Cat"), src2.join("Cat")).unwrap();
    std::os::unix::fs::symlink(src.join("Cat"), src2.join("Dog")).unwrap();
    let o = packed(&src2, &dir.join("twins.bin"), &[]);
    assert_refused(&o, &["same folder", "Dog"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 23, group 11: a source folder named like a subcommand (`photos`) packs when the
/// arguments do not fit the subcommand, with a note.
#[test]
fn a_folder_named_like_a_subcommand_is_packed() {
    let dir = tmp("pack-r2-photos-folder");
    photos(&dir.join("photos"), 6);
    let o = pack()
        .current_dir(&dir)
        .args(["photos", "--test", "2", "-q", "-o", "out"])
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(stderr_of(&o).contains("./photos"), "{}", stderr_of(&o));
    assert!(dir.join("out/train.bin").is_file() && dir.join("out/test.bin").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 23, smaller ones: an AVIF file is reported as unsupported, not corrupt; a `file://`
/// URL as an unsupported scheme, not an invalid format.
#[test]
fn unsupported_formats_and_schemes_are_named_as_such() {
    let dir = tmp("pack-r2-avif");
    let mut avif = vec![0, 0, 0, 0x1c];
    avif.extend_from_slice(b"ftypavif\0\0\0\0avifmif1miaf");
    avif.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.join("a.jpg"), &avif).unwrap();
    let o = pack()
        .args(["photos", "-q", "-o"])
        .arg(dir.join("o.bin"))
        .arg(dir.join("a.jpg"))
        .output()
        .unwrap();
    common::stderr_with(&o, &["unsupported image format AVIF"], &["corrupt"]);
    let o = pack()
        .args(["--fetch", "petimages", "-q", "-o"])
        .arg(dir.join("out"))
        .env("CATDOG_DATA_URL", "file:///tmp/x.zip")
        .output()
        .unwrap();
    assert_refused(&o, &["file:///tmp/x.zip", "only http:// and https://"]);
    std::fs::remove_dir_all(&dir).ok();
}
