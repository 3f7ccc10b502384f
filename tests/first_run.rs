//! The first run on a fresh machine: `./model` with no data fetches the PetImages archive
//! (here from a local HTTP server on 127.0.0.1 that serves a small zip made by the test; the
//! fetch code is the real one, only `CATDOG_DATA_URL` differs), packs it with `tools/pack` and
//! trains; an interrupted download resumes with `Range`; offline, one `error:` line gives the
//! commands to do it by hand; and the data hints give commands that work.

#[path = "common/http.rs"]
mod http;
#[path = "common/packer.rs"]
mod packer;

use catdog::blob::Blob;
use packer::pack_bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("catdog-first-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn model_in(dir: &Path, url: &str, args: &[&str]) -> Output {
    pack_bin();
    Command::new(env!("CARGO_BIN_EXE_model"))
        .current_dir(dir)
        .env("CATDOG_DATA_URL", url)
        .env_remove("CATDOG_PACK")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn pack_fetch_resumes_an_interrupted_download_checks_the_zip_and_packs_it() {
    let dir = tmp("fetch");
    let zip = http::petimages_zip(10);
    let (url, log) = http::serve(zip.clone(), "kagglecatsanddogs_5340.zip", 2, true);
    let out = Command::new(pack_bin())
        .args(["--fetch", "petimages", "--size", "32", "-o"])
        .arg(dir.join("data"))
        .env("CATDOG_DATA_URL", &url)
        .output()
        .unwrap();
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    // The first response was cut in the middle; the second asked for the rest.
    let seen = log.lock().unwrap().clone();
    let half = zip.len() / 2;
    assert_eq!(
        seen,
        vec![String::new(), format!("bytes={half}-")],
        "{text}"
    );
    assert!(
        text.contains("interrupted") && text.contains("resuming"),
        "{text}"
    );
    let got = std::fs::read(dir.join("data/downloads/kagglecatsanddogs_5340.zip")).unwrap();
    assert!(
        got == zip,
        "the resumed download differs from the served archive"
    );
    assert!(!dir
        .join("data/downloads/kagglecatsanddogs_5340.zip.part")
        .exists());
    // The packer skipped and counted the broken files, and split 20%, stratified.
    for (name, why) in [
        ("Cat/666.jpg", "empty file"),
        ("Dog/11702.jpg", "JPEG"),
        ("Cat/Thumbs.db", "unknown extension"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with("skipped ") && l.contains(name))
            .unwrap_or_else(|| panic!("no skip line for {name}: {text}"));
        assert!(line.contains(why), "{line}");
    }
    assert!(text.contains("20 packed, 3 skipped"), "{text}");
    let train = Blob::open(&dir.join("data/train.bin")).unwrap();
    let test = Blob::open(&dir.join("data/test.bin")).unwrap();
    assert_eq!((train.len(), test.len()), (16, 4));
    assert_eq!(test.label_counts()[..2], [2, 2]);
    assert_eq!(train.dims(), (32, 32, 3));
    // A second run finds the archive and the unzipped photos and does not download again.
    let again = Command::new(pack_bin())
        .args(["--fetch", "petimages", "--size", "32", "-q", "-o"])
        .arg(dir.join("data"))
        .env("CATDOG_DATA_URL", http::dead_url())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", show(&again));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_on_a_fresh_clone_fetches_packs_and_trains_and_runs_do_not_overwrite_each_other() {
    let dir = tmp("fresh");
    let (url, _log) = http::serve(http::petimages_zip(10), "x.zip", 1, false);
    // `./model` takes train's flags directly.
    let out = model_in(&dir, &url, &["--epochs", "1", "--log-every", "0"]);
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("fetching Microsoft's PetImages"), "{text}");
    assert!(text.contains("Accuracy is: "), "{text}");
    assert_eq!(Blob::open(&dir.join("data/train.bin")).unwrap().len(), 16);
    assert_eq!(Blob::open(&dir.join("data/test.bin")).unwrap().len(), 4);
    let first = dir.join("data/runs/1/checkpoint.ckpt");
    let first_bytes = std::fs::read(&first).expect("the first run's checkpoint");
    // A second fresh run gets its own folder; the first run's checkpoint is untouched.
    let dead = http::dead_url();
    let out = model_in(
        &dir,
        &dead,
        &["--epochs", "1", "--log-every", "0", "--seed", "7"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("data/runs/2/checkpoint.ckpt").is_file());
    assert!(std::fs::read(&first).unwrap() == first_bytes);
    // `--resume last` continues the newest run, in its own folder.
    let out = model_in(
        &dir,
        &dead,
        &["--resume", "last", "--epochs", "2", "--log-every", "0"],
    );
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("data/runs/2/checkpoint.ckpt"), "{text}");
    assert!(text.contains("resuming after epoch 1 of 2"), "{text}");
    let ck = catdog::checkpoint::load(&dir.join("data/runs/2/checkpoint.ckpt")).unwrap();
    assert_eq!((ck.epochs_done, ck.hyper.seed), (2, 7));
    assert!(!dir.join("data/runs/3").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn offline_the_first_run_fails_with_one_error_line_giving_the_commands() {
    let dir = tmp("offline");
    let url = http::dead_url();
    let out = model_in(&dir, &url, &[]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    let e = errors[0];
    assert!(e.contains("cannot download") && e.contains(&url), "{e}");
    assert!(
        e.contains("tools/pack DIR/PetImages --test-fraction 0.2 -o data"),
        "{e}"
    );
    assert!(!dir.join("data/train.bin").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fetch_refuses_an_archive_that_is_not_petimages() {
    let dir = tmp("notzip");
    for (body, want) in [
        (b"<html>not found</html>".to_vec(), "not a zip archive"),
        (
            http::make_zip(&[("PetImages/Cat/1.png".into(), http::png(8, 8, false, 1))]),
            "without the folders PetImages/Cat/ and PetImages/Dog/",
        ),
    ] {
        let _ = std::fs::remove_dir_all(dir.join("data"));
        let (url, _) = http::serve(body, "a.zip", 1, false);
        let out = Command::new(pack_bin())
            .args(["--fetch", "petimages", "-o"])
            .arg(dir.join("data"))
            .env("CATDOG_DATA_URL", &url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}", show(&out));
        let line = err.lines().find(|l| l.contains("error:")).unwrap_or("");
        assert!(line.contains(want) && line.contains("by hand"), "{err}");
        assert!(!dir.join("data/train.bin").exists());
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The hint for missing data is a command that works: run it as printed (with a folder of
/// photos for PHOTO_DIR), and the same `model` command finds its data; `--dry-run` reads the
/// image size from that data, and refuses missing data as a real run does.
#[test]
fn the_no_data_hint_is_a_command_that_works_and_dry_run_reads_the_data() {
    let dir = tmp("hint");
    let d = dir.join("mydata");
    let args = |dry: bool| {
        let mut v = vec![
            "train".to_string(),
            "--train".into(),
            d.join("train.bin").display().to_string(),
            "--test".into(),
            d.join("test.bin").display().to_string(),
        ];
        if dry {
            v.push("--dry-run".into());
        }
        v
    };
    let model = |a: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_model"))
            .current_dir(&dir)
            .args(a)
            .output()
            .unwrap()
    };
    let out = model(&args(true));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("train.bin: training data not found"), "{err}");
    let cmd = err.split('`').nth(1).expect("a command between backticks");
    assert!(cmd.starts_with("tools/pack PHOTO_DIR "), "{cmd}");
    // Photos in Cat/ and Dog/ folders, then the command as printed.
    let photos = dir.join("photos");
    for (class, dog) in [("Cat", false), ("Dog", true)] {
        std::fs::create_dir_all(photos.join(class)).unwrap();
        for i in 0..10 {
            std::fs::write(
                photos.join(class).join(format!("{i}.png")),
                http::png(24, 24, dog, i),
            )
            .unwrap();
        }
    }
    let mut words = cmd.split_whitespace().skip(1);
    let mut pack = Command::new(pack_bin());
    pack.current_dir(&dir);
    for w in words.by_ref() {
        if w == "PHOTO_DIR" {
            pack.arg(&photos);
        } else {
            pack.arg(w);
        }
    }
    pack.args(["--size", "16", "-q"]);
    let packed = pack.output().unwrap();
    assert!(packed.status.success(), "{}", show(&packed));
    let out = model(&args(true));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text.contains("image 16x16"),
        "the plan is not for the data's size: {text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
