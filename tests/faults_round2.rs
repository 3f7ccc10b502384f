//! Faults and misuse of `model`, second round (issue 23): outputs that are not regular files,
//! two runs started together, non-finite checkpoints, one-class data, Ctrl-C, empty run
//! folders, leftovers of killed `predict` runs. Nothing replaced, nothing mislabelled, nothing
//! trusted that changed.

mod common;
use catdog::blob::{write_blob, BlobMeta};
use common::{
    assert_fifo_and_links_kept, assert_ok, assert_refused, fifo_and_link, stderr_of, strings, tmp,
    tmp_with_blobs, SMALL_NET,
};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `model`, run in `cwd`.
fn model(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(cwd)
        .env_remove("CATDOG_TEST_ABORT_AFTER_EPOCH");
    c
}

/// `train` of the small network on `dir`'s blobs, batch 4, `epochs` epochs, no step lines.
fn train_args(dir: &Path, epochs: &str) -> Vec<String> {
    train_on(dir, epochs, "train.bin", "test.bin")
}

/// [`train_args`] on the blobs `train` and `test` (names in `dir`, or paths).
fn train_on(dir: &Path, epochs: &str, train: &str, test: &str) -> Vec<String> {
    let mut a = strings(&[
        "train",
        "--batch-size",
        "4",
        "--log-every",
        "0",
        "--epochs",
        epochs,
    ]);
    a.extend(strings(&SMALL_NET));
    for (flag, f) in [("--train", train), ("--test", test)] {
        a.push(flag.into());
        a.push(dir.join(f).to_str().unwrap().into());
    }
    a
}

/// One epoch of [`train_args`] into checkpoint `ck`.
fn train_one_epoch(dir: &Path, ck: &Path) -> std::process::Output {
    model(dir)
        .args(train_args(dir, "1"))
        .arg("--checkpoint")
        .arg(ck)
        .output()
        .unwrap()
}

/// [`train_on`] `train` and `test` in `dir` for one epoch, without a checkpoint.
fn train_once_on(dir: &Path, train: &str, test: &str) -> std::process::Output {
    model(dir)
        .args(train_on(dir, "1", train, test))
        .arg("--no-checkpoint")
        .output()
        .unwrap()
}

/// `model` with `args` and `--checkpoint ck` started, its standard error piped.
fn spawn_with_checkpoint(dir: &Path, args: Vec<String>, ck: &Path, stdout: Stdio) -> Child {
    model(dir)
        .args(args)
        .arg("--checkpoint")
        .arg(ck)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Group 1: a FIFO or a symbolic link given as an output (`--metrics`, `--save`, `--plot`,
/// `--checkpoint`, `eval --errors`) is refused before any work, exit 2, and stays what it was;
/// the file a link points to is untouched.
#[test]
fn outputs_that_are_not_regular_files_are_refused_before_any_work() {
    let dir = tmp_with_blobs("r2-outputs", 8, (32, 1), (8, 2));
    let [fifo, target, link] = fifo_and_link(&dir, "pipe.csv", "precious.raw", "link.raw");
    let plot_link = dir.join("curves.png");
    std::os::unix::fs::symlink(&target, &plot_link).unwrap();
    let ck = dir.join("run.ckpt");
    let cases: [(&str, &Path, &str); 5] = [
        ("--metrics", &fifo, "named pipe"),
        ("--save", &link, "symbolic link"),
        ("--plot", &plot_link, "symbolic link"),
        ("--checkpoint", &fifo, "named pipe"),
        ("--checkpoint", &link, "symbolic link"),
    ];
    for (flag, p, what) in cases {
        let mut c = model(&dir);
        c.args(train_args(&dir, "1"));
        if flag != "--checkpoint" {
            c.arg("--checkpoint").arg(&ck);
        }
        let o = c.arg(flag).arg(p).output().unwrap();
        assert_refused(&o, &[flag, what]);
        assert!(
            o.stdout.is_empty(),
            "{flag}: work was done before the refusal"
        );
        assert!(!ck.exists(), "{flag}: a checkpoint was written");
    }
    // eval --errors onto a link.
    assert_ok(&train_one_epoch(&dir, &ck));
    let o = model(&dir)
        .args(["eval", "--params"])
        .arg(&ck)
        .arg("--data")
        .arg(dir.join("test.bin"))
        .arg("--errors")
        .arg(&link)
        .output()
        .unwrap();
    assert_refused(&o, &["--errors", "symbolic link"]);
    assert_fifo_and_links_kept(&fifo, &target, &[&link, &plot_link]);
    // Nothing was moved aside as "the earlier run's checkpoint".
    let names = common::names_in(&dir);
    assert!(
        !names.iter().any(|n| n.to_string_lossy().contains(".1")),
        "{names:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Group 2: fresh runs started together in one folder each claim their own run folder (the
/// folder is created with a call that fails if it exists), and every run's checkpoint stays.
#[test]
fn runs_started_together_get_their_own_run_folders() {
    let dir = tmp_with_blobs("r2-together", 8, (64, 1), (8, 2));
    // In one process: eight claims at once, eight folders.
    let runs = dir.join("claims");
    let got: Vec<PathBuf> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| catdog::runs::claim_run_dir(&runs).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut names: Vec<String> = got.iter().map(|p| p.display().to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8, "{names:?}");
    // Three processes started together, in one working folder.
    let children: Vec<_> = (0..3)
        .map(|_| {
            model(&dir)
                .args(train_args(&dir, "2"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut folders = Vec::new();
    for mut ch in children {
        let (st, err) = common::stderr_after_exit(&mut ch, 120, "a run started with others");
        assert!(st.success(), "{err}");
        assert!(!err.contains("moved the earlier run"), "{err}");
        let line = err
            .lines()
            .find_map(|l| l.strip_prefix("checkpoint: "))
            .unwrap_or_else(|| panic!("{err}"))
            .to_string();
        folders.push(line);
    }
    folders.sort();
    folders.dedup();
    assert_eq!(folders.len(), 3, "{folders:?}");
    for f in &folders {
        let ck = catdog::checkpoint::load(&dir.join(f)).unwrap();
        assert_eq!(ck.epochs_done, 2, "{f}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Group 15: a run that fails before training leaves no empty run folder, an empty folder is
/// never adopted by the next run (another run may have just claimed it), and a folder numbered
/// at the largest number is refused instead of wrapping to 0.
#[test]
fn no_empty_run_folders_are_left_or_adopted() {
    let dir = tmp_with_blobs("r2-empty", 8, (32, 1), (8, 2));
    let o = model(&dir)
        .args(train_on(&dir, "1", "missing.bin", "test.bin"))
        .output()
        .unwrap();
    assert_refused(&o, &["missing.bin"]);
    let runs = dir.join("data/runs");
    let left: Vec<_> = std::fs::read_dir(&runs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::create_dir_all(runs.join("1")).unwrap();
    assert_ok(&model(&dir).args(train_args(&dir, "1")).output().unwrap());
    assert!(runs.join("2/checkpoint.ckpt").is_file());
    assert!(
        std::fs::read_dir(runs.join("1")).unwrap().next().is_none(),
        "the empty folder was adopted"
    );
    std::fs::create_dir_all(runs.join(u64::MAX.to_string())).unwrap();
    let o = model(&dir).args(train_args(&dir, "1")).output().unwrap();
    assert_refused(&o, &["largest number"]);
    assert!(!runs.join("0").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// CRC-32 (IEEE), as the checkpoint's checksums.
fn crc32(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

/// Group 6: a checkpoint with a NaN parameter and a valid checksum is refused by `predict`,
/// `eval` and `--resume`, naming the file and the value.
#[test]
fn checkpoints_with_non_finite_parameters_are_refused_everywhere() {
    let dir = tmp_with_blobs("r2-nan", 8, (32, 1), (8, 2));
    let good = dir.join("good.ckpt");
    assert_ok(&train_one_epoch(&dir, &good));
    let mut b = std::fs::read(&good).unwrap();
    let ck = catdog::checkpoint::decode(&b).unwrap();
    let (p, v) = (ck.params.len(), ck.velocity.len());
    let at = b.len() - 4 - 4 * (p + v) + 4 * 7; // parameter 7
    for (k, value) in [f32::NAN, f32::INFINITY].into_iter().enumerate() {
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let body = b.len() - 4;
        let c = crc32(&b[..body]);
        b[body..].copy_from_slice(&c.to_le_bytes());
        let bad = dir.join(format!("bad{k}.ckpt"));
        std::fs::write(&bad, &b).unwrap();
        let name = bad.display().to_string();
        let o = model(&dir)
            .args(["eval", "--params", &name, "--data"])
            .arg(dir.join("test.bin"))
            .output()
            .unwrap();
        assert_refused(&o, &[&name, "parameter 7", "not a finite number"]);
        let o = model(&dir)
            .args(["predict", "--params", &name])
            .arg(dir.join("test.bin"))
            .output()
            .unwrap();
        assert_refused(&o, &[&name, "not a finite number"]);
        assert!(o.stdout.is_empty());
        let o = model(&dir)
            .args(train_args(&dir, "2"))
            .args(["--resume", &name])
            .output()
            .unwrap();
        assert_refused(&o, &[&name, "not a finite number"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A blob of `n` 8x8 images, every label `label`.
fn one_class_blob(p: &Path, n: usize, label: u8) {
    let meta = BlobMeta {
        height: 8,
        width: 8,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: vec![label; n],
        sources: (0..n).map(|i| format!("s/{i}.png").into()).collect(),
        note: "one class".into(),
    };
    let img = vec![90u8; 8 * 8 * 3];
    write_blob(p, &meta, (0..n).map(|_| &img[..])).unwrap();
}

/// Group 7: training data of one class is refused, naming the missing class; a test set of
/// one class gets a warning naming it.
#[test]
fn one_class_training_data_is_refused_and_a_one_class_test_set_warned() {
    let dir = tmp_with_blobs("r2-oneclass", 8, (32, 1), (8, 2));
    one_class_blob(&dir.join("cats.bin"), 32, 0);
    let o = train_once_on(&dir, "cats.bin", "test.bin");
    assert_refused(&o, &["cats.bin", "no dog"]);
    one_class_blob(&dir.join("dogs.bin"), 8, 1);
    let o = train_once_on(&dir, "train.bin", "dogs.bin");
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(
        err.contains("warning:") && err.contains("dogs.bin") && err.contains("no cat"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn sigint(pid: u32) {
    // SAFETY: sends a signal to a child this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
}

/// Group 14: Ctrl-C mid-epoch ends with 130 and one line naming the checkpoint kept, its
/// epoch, and the command that continues; that command continues the run. Interrupted before
/// its first checkpoint, a run says none was written and leaves no empty run folder.
#[test]
fn ctrl_c_says_what_was_kept_and_how_to_continue() {
    let dir = tmp_with_blobs("r2-sigint", 8, (8000, 1), (8, 2));
    let ck = dir.join("run.ckpt");
    // Step lines on stdout: the first one of epoch 2 comes after epoch 1's checkpoint.
    let args = |epochs: &str| {
        let mut a = strings(&["train", "--epochs", epochs, "--batch-size", "1"]);
        a.extend(strings(&SMALL_NET));
        a.extend(strings(&["--log-every", "1", "--train"]));
        a.push(dir.join("train.bin").to_str().unwrap().into());
        a.push("--test".into());
        a.push(dir.join("test.bin").to_str().unwrap().into());
        a
    };
    let mut ch = spawn_with_checkpoint(&dir, args("3"), &ck, Stdio::piped());
    let out = std::io::BufReader::new(ch.stdout.take().unwrap());
    for l in out.lines() {
        if l.unwrap().starts_with("Epoch: 1, Step: 0") {
            break;
        }
    }
    sigint(ch.id());
    let (st, err) = common::stderr_after_exit(&mut ch, 60, "train after SIGINT");
    assert_eq!(st.code(), Some(130), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("interrupted:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains(&format!("kept {}", ck.display())) && line.contains("after epoch 1 of 3"),
        "{line}"
    );
    let cmd = line.split("continue with: ./model ").nth(1).unwrap();
    assert!(cmd.contains("--resume") && cmd.contains("--train"), "{cmd}");
    // The command printed continues the run (the paths have no characters to quote).
    let o = model(&dir)
        .args(cmd.split(' '))
        .args(["--log-every", "0"])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(catdog::checkpoint::load(&ck).unwrap().epochs_done, 3);
    // Before the first checkpoint: no run folder is left.
    let mut ch = model(&dir)
        .args(args("3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(ch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    sigint(ch.id());
    let (st, err) = common::stderr_after_exit(&mut ch, 60, "train after SIGINT");
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(
        err.contains("no checkpoint of this run was written"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("data/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Group 12: the temporary folder of a `predict` killed while packing photos is removed by the
/// next `predict`; a live process's folder is left alone.
#[test]
fn predict_removes_temporary_blobs_of_killed_runs() {
    let dir = tmp_with_blobs("r2-predict", 8, (32, 1), (8, 2));
    let tmpdir = tmp("r2-predict-tmp");
    let ck = dir.join("c.ckpt");
    assert_ok(&train_one_epoch(&dir, &ck));
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = tmpdir.join(format!("catdog-predict-{dead}"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("photos-0.bin"), vec![0u8; 4096]).unwrap();
    let live = tmpdir.join(format!("catdog-predict-{}", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    let o = model(&dir)
        .env("TMPDIR", &tmpdir)
        .args(["predict", "--params"])
        .arg(&ck)
        .arg(dir.join("test.bin"))
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(!stale.exists(), "the dead run's folder is still there");
    assert!(live.exists(), "a live process's folder was removed");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&tmpdir).ok();
}

/// A checkpoint whose epoch count disagrees with its history is refused as damaged.
#[test]
fn a_checkpoint_whose_history_disagrees_with_its_epochs_is_refused() {
    let h = catdog::testing::tiny_hyper();
    let n = h.shapes().unwrap().param_count();
    let recipe = catdog::config::Recipe::improved();
    let params = vec![0.5f32; n];
    let history = vec![catdog::metrics::EpochRecord {
        epoch: 1,
        train_loss: 0.5,
        test_accuracy: Some(0.5),
        test_loss: Some(0.6),
        samples_per_s: 10.0,
        elapsed_s: 1.0,
        lr: 0.01,
        val_accuracy: None,
        val_loss: None,
    }];
    let c = catdog::checkpoint::CheckpointRef {
        epochs_done: 3,
        history: &history,
        ..catdog::checkpoint::CheckpointRef::new(&h, &recipe, &params)
    };
    let b = catdog::checkpoint::encode(&c).unwrap();
    let e = catdog::checkpoint::decode(&b).unwrap_err();
    assert!(e.contains("3 epochs") && e.contains("history"), "{e}");
}

/// Group 4: a training blob changed under a running `train` (another file renamed over it, or
/// its bytes rewritten in place with the modification time put back) stops the run with exit
/// 2 naming the file, and the checkpoint keeps the last epoch trained on the data as opened.
#[test]
fn a_blob_changed_while_training_stops_the_run_before_its_checkpoint() {
    for replace in [true, false] {
        let dir = tmp_with_blobs("r2-changed", 8, (8000, 1), (8, 2));
        common::synthetic_blob(&dir.join("other.bin"), 8000, 8, 9);
        let train = dir.join("train.bin");
        let ck = dir.join("run.ckpt");
        let mut args = train_args(&dir, "4");
        common::set_flag(&mut args, "--batch-size", "1");
        let mut ch = spawn_with_checkpoint(&dir, args, &ck, Stdio::null());
        let t = std::time::Instant::now();
        while !ck.exists() {
            assert!(t.elapsed().as_secs() < 60, "no checkpoint after 60 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if replace {
            std::fs::rename(dir.join("other.bin"), &train).unwrap();
        } else {
            let mtime = std::fs::metadata(&train).unwrap().modified().unwrap();
            let bytes = std::fs::read(dir.join("other.bin")).unwrap();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&train)
                .unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
            f.set_modified(mtime).unwrap();
        }
        let (st, err) = common::stderr_after_exit(&mut ch, 120, "train on a changed blob");
        assert_eq!(st.code(), Some(2), "{err}");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
        let want = if replace {
            "another file was put in its place"
        } else {
            "rewritten"
        };
        assert!(
            line.contains(&train.display().to_string()) && line.contains(want),
            "{line}"
        );
        assert!(!line.contains("lower --lr"), "{line}");
        assert_eq!(
            catdog::checkpoint::load(&ck).unwrap().epochs_done,
            1,
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// A PNG whose header claims `w` x `h` pixels (no pixel data follows).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut v, b"IHDR", &ihdr);
    chunk(&mut v, b"IDAT", &[]);
    chunk(&mut v, b"IEND", &[]);
    v
}

/// The smaller ones of issue 23, each as a user meets it.
#[test]
fn smaller_misreports_are_mended() {
    let dir = tmp_with_blobs("r2-small", 8, (32, 1), (8, 2));
    let ck = dir.join("c.ckpt");
    assert_ok(&train_one_epoch(&dir, &ck));
    let ckn = ck.to_str().unwrap();
    // --checkpoint FILE/c.ckpt, FILE a file: not "does not exist".
    let o = train_one_epoch(&dir, &dir.join("train.bin/c.ckpt"));
    assert_refused(&o, &["train.bin is not a folder"]);
    // An explicit symbolic link loop is not "not found".
    let lp = dir.join("loop.bin");
    std::os::unix::fs::symlink(&lp, &lp).unwrap();
    let o = model(&dir)
        .args(train_on(&dir, "1", "loop.bin", "test.bin"))
        .output()
        .unwrap();
    let line = assert_refused(&o, &["loop.bin", "symbolic links"]);
    assert!(!line.contains("not found"), "{line}");
    let o = model(&dir)
        .args(["predict", "--params", ckn])
        .arg(&lp)
        .output()
        .unwrap();
    let line = assert_refused(&o, &["loop.bin", "symbolic links"]);
    assert!(!line.contains("no such"), "{line}");
    // --params given a dataset blob.
    let data = dir.join("test.bin");
    let o = model(&dir)
        .args(["eval", "--params"])
        .arg(&data)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_refused(&o, &["test.bin", "dataset blob, not a model"]);
    // --errors-count 0 with --errors.
    let o = model(&dir)
        .args(["eval", "--params", ckn, "--errors-count", "0", "--errors"])
        .arg(dir.join("e.png"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_refused(&o, &["--errors-count 0"]);
    // Recall of a class with no samples is n/a, not 0.
    one_class_blob(&dir.join("dogs.bin"), 8, 1);
    let o = model(&dir)
        .args(["eval", "--params", ckn, "--data"])
        .arg(dir.join("dogs.bin"))
        .output()
        .unwrap();
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    let cat = text.lines().find(|l| l.starts_with("cat:")).unwrap();
    assert!(cat.ends_with("recall n/a"), "{text}");
    // Label 2 of a 3-class blob is not "unlabeled".
    let meta = BlobMeta {
        height: 8,
        width: 8,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into(), "fox".into()],
        labels: vec![0, 1, 2, 0],
        sources: (0..4).map(|i| format!("s/{i}.png").into()).collect(),
        note: "three classes".into(),
    };
    let img = vec![90u8; 8 * 8 * 3];
    write_blob(&dir.join("three.bin"), &meta, (0..4).map(|_| &img[..])).unwrap();
    let o = model(&dir)
        .args(["eval", "--params", ckn, "--data"])
        .arg(dir.join("three.bin"))
        .output()
        .unwrap();
    let line = assert_refused(&o, &["sample 2", "has label 2"]);
    assert!(!line.contains("unlabeled"), "{line}");
    // predict's skip reason does not name a flag predict does not take.
    std::fs::write(dir.join("bomb.png"), png_header_only(100_000, 100_000)).unwrap();
    let o = model(&dir)
        .args(["predict", "--params", ckn])
        .arg(dir.join("bomb.png"))
        .output()
        .unwrap();
    common::stderr_with(&o, &["over the limit"], &["--max-pixels"]);
    // A perfect prediction's loss is 0, never -0.0000.
    let loss = catdog::report::mean_bce(&[1.0, 0.0], &[1, 0]);
    assert!(loss >= 0.0, "{loss}");
    assert_eq!(format!("{loss:.4}"), "0.0000");
    // Unicode line and paragraph separators are escaped in printed names.
    let e = catdog::guard::escape_name("a\u{2028}b\u{2029}c\u{85}d".as_bytes());
    assert_eq!(e, "a\\u{2028}b\\u{2029}c\\u{0085}d");
    std::fs::remove_dir_all(&dir).ok();
}
