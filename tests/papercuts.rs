//! What a newcomer reads and types: the docs stand alone and agree with `--help`, usage errors
//! are as documented, prerequisites are stated, generated files are ignored in any subfolder of
//! data/, rates print one decimal, and the packer says when the trainer cannot use a size.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/packer.rs"]
mod packer;

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap()
}

/// Asserts that the repository's file `rel` has each of `lines` as a line of its own.
fn has_lines(rel: &str, lines: &[&str]) {
    let text = read(rel);
    for want in lines {
        assert!(text.lines().any(|l| l == *want), "{rel} lacks {want}");
    }
}

fn model(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_model"))
        .current_dir(common::scratch_cwd())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every document a user gets, and every --help text.
#[test]
fn docs_and_help_do_not_point_outside_the_project() {
    let mut docs = vec![
        "README.md".to_string(),
        "tools/README.md".into(),
        "data/README.md".into(),
    ];
    for e in std::fs::read_dir(Path::new(ROOT).join("asm_notes")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            docs.push(format!("asm_notes/{name}"));
        }
    }
    for d in &docs {
        let text = read(d);
        for bad in ["../shared", "ORIGINAL.md"] {
            assert!(!text.contains(bad), "{d} mentions {bad}");
        }
    }
    assert!(read("README.md").contains("https://github.com/mohammad-ghaderi/cat-dog-asm-cnn"));
    for args in [
        &["--help"][..],
        &["train", "--help"],
        &["eval", "--help"],
        &["predict", "--help"],
        &["bench", "--help"],
    ] {
        let o = model(args);
        assert!(o.status.success());
        assert!(!stdout(&o).contains("../shared"), "model {args:?}");
    }
    for args in [
        &["--help"][..],
        &["photos", "--help"],
        &["inspect", "--help"],
    ] {
        let o = Command::new(packer::pack_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(!stdout(&o).contains("../shared"), "pack {args:?}");
    }
}

#[test]
fn readme_and_help_agree() {
    let readme = read("README.md");
    let train = stdout(&model(&["train", "--help"]));
    assert!(train.contains("--widths <A,B,C>"), "{train}");
    assert!(readme.contains("`--widths A,B,C`"));
    let predict = stdout(&model(&["predict", "--help"]));
    let examples: Vec<&str> = catdog::cli::PREDICT_EXAMPLES
        .lines()
        .skip(1)
        .map(str::trim)
        .collect();
    assert_eq!(examples.len(), 2);
    for line in examples {
        assert!(predict.contains(line), "predict --help lacks {line}");
        assert!(readme.contains(line), "README lacks {line}");
    }
    for flag in ["--resume <FILE|last>", "--force", "--dry-run"] {
        assert!(train.contains(flag), "train --help lacks {flag}");
    }
}

/// The README's pack commands each write somewhere else.
#[test]
fn readme_pack_examples_do_not_overwrite_each_other() {
    let readme = read("README.md");
    let section = &readme[readme.find("## Getting the data").unwrap()..];
    let section = &section[..section[3..].find("\n## ").unwrap()];
    let outs: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tools/pack ") && !l.contains("--fetch"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w[w.iter().position(|x| *x == "-o").unwrap() + 1]
        })
        .collect();
    assert!(outs.len() >= 2, "{outs:?}");
    for (i, a) in outs.iter().enumerate() {
        assert!(!outs[i + 1..].contains(a), "two examples write to {a}");
    }
}

/// Usage errors are clap's (error line, usage, hint; exit 2), as the README says; `model`
/// takes train's flags without `train`.
#[test]
fn usage_errors_are_as_documented_and_model_takes_train_flags() {
    let o = model(&["--no-such-flag"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("Usage:"),
        "{err}"
    );
    let readme = read("README.md");
    assert!(readme.contains("the usage line and a pointer to `--help`, also exit code 2"));
    // `./model --epochs 1 ...` is a train command (it gets as far as the data).
    let o = model(&[
        "--epochs",
        "1",
        "--train",
        "/nonexistent/x.bin",
        "--test",
        "/nonexistent/y.bin",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("x.bin: training data not found"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn prerequisites_are_stated() {
    let cargo = read("Cargo.toml");
    let v = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("**Rust {v} or newer**")),
        "README must state Rust {v}"
    );
    assert!(read("tools/packer/Cargo.toml").contains(&format!("rust-version = \"{v}\"")));
    assert!(readme.contains("AVX-512 F, BW, DQ and VL") && readme.contains("reference"));
}

/// Blobs, checkpoints, runs and downloads are ignored in any subfolder of data/.
#[test]
fn generated_files_are_ignored_anywhere_under_data() {
    let paths = [
        "data/train.bin",
        "data/kaggle/train.bin",
        "data/a/b/test.bin",
        "data/checkpoint.ckpt",
        "data/runs/3/checkpoint.ckpt",
        "data/x/y.1.ckpt",
        "data/downloads/kagglecatsanddogs_5340.zip",
        "data/downloads/PetImages/Cat/1.jpg",
    ];
    let git = Command::new("git")
        .arg("-C")
        .arg(ROOT)
        .args(["check-ignore", "--no-index", "--"])
        .args(paths)
        .output();
    match git {
        Ok(o) if o.status.code() == Some(0) || o.status.code() == Some(1) => {
            let ignored = stdout(&o);
            for p in paths {
                assert!(ignored.lines().any(|l| l == p), "git does not ignore {p}");
            }
            assert!(!ignored.contains("README"));
        }
        _ => {
            // No git (e.g. an exported tarball): check the patterns themselves.
            let patterns = [
                "/data/**/*.bin",
                "/data/**/*.ckpt",
                "/data/runs/",
                "/data/downloads/",
            ];
            has_lines(".gitignore", &patterns);
        }
    }
    let patterns = [
        "data/**/*.bin",
        "data/**/*.ckpt",
        "data/runs",
        "data/downloads",
    ];
    has_lines(".dockerignore", &patterns);
}

#[test]
fn progress_rates_have_one_decimal() {
    assert_eq!(
        catdog::metrics::rate(1234.5678, "samples/s"),
        "1234.6 samples/s"
    );
    assert_eq!(catdog::metrics::rate(7.0, "samples/s"), "7.0 samples/s");
}

/// A size the trainer cannot use is packed, with a note; a usable one gets none.
#[test]
fn pack_says_when_the_trainer_cannot_use_the_size() {
    let dir = std::env::temp_dir().join(format!("catdog-papercut-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..3 {
        std::fs::write(
            dir.join(format!("cat.{i}.png")),
            http::png(20, 20, false, i),
        )
        .unwrap();
        std::fs::write(dir.join(format!("dog.{i}.png")), http::png(20, 20, true, i)).unwrap();
    }
    for (size, note) in [("48x32", true), ("20", true), ("24", false)] {
        let out = dir.join(format!("o{size}.bin"));
        let o = Command::new(packer::pack_bin())
            .arg(&dir)
            .args(["--size", size, "-q", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(
            err.contains("the trainer cannot use"),
            note,
            "--size {size}: {err}"
        );
        assert!(out.is_file());
    }
    std::fs::remove_dir_all(&dir).ok();
}
