//! Faults and misuse of the `model` binary (issue 13): closed or full standard streams, outputs
//! that name an input, non-regular inputs, absurd sizes, a blob truncated under a running
//! `train`, leftovers of killed runs, hostile file names. Nothing may hang, panic or destroy a
//! file; every bad input gets one `error:` line and exit code 2.

mod common;
use common::{
    assert_ok, assert_refused, dev_full, first_line_then_close, have_dev_full, mkfifo,
    stderr_after_exit, stderr_of, strings, synthetic_blob, tmp, tmp_with_blobs, SMALL_NET,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn model() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c.env_remove("CATDOG_TEST_ABORT_AFTER_EPOCH");
    c
}

/// A fresh temporary folder with small blobs (8x8 images) for fast runs: `train.bin` with `n`
/// samples, `test.bin` with 8.
fn tmp_with_small_blobs(tag: &str, n: usize) -> PathBuf {
    tmp_with_blobs(tag, 8, (n, 1), (8, 2))
}

/// `train` on the blobs of [`tmp_with_small_blobs`], the small network, checkpointing to
/// `run.ckpt`.
fn train_args(dir: &Path) -> Vec<String> {
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let mut args = strings(&SMALL_NET);
    args.extend(strings(&[
        "--train",
        &path("train.bin"),
        "--test",
        &path("test.bin"),
    ]));
    args.extend(strings(&["--checkpoint", &path("run.ckpt")]));
    args.insert(0, "train".into());
    args
}

/// `model` with [`train_args`] and the words of `flags`.
fn train(dir: &Path, flags: &str) -> Command {
    let mut c = model();
    c.args(train_args(dir)).args(common::words(flags));
    c
}

/// [`tmp_with_small_blobs`] of 32 samples, where `/dev/full` is here (see [`have_dev_full`]).
fn blobs_if_dev_full(tag: &str) -> Option<PathBuf> {
    have_dev_full().then(|| tmp_with_small_blobs(tag, 32))
}

/// One epoch of [`train`], which must succeed; its checkpoint.
fn train_one_epoch(dir: &Path) -> PathBuf {
    assert_ok(
        &train(dir, "--batch-size 4 --epochs 1 --log-every 0")
            .output()
            .unwrap(),
    );
    dir.join("run.ckpt")
}

/// `model train | head -1`: the step lines meet a closed pipe. Every thread count must stop,
/// quietly, with 141 (what a shell reports for SIGPIPE), instead of a panic in one thread and
/// the others waiting forever.
#[test]
fn train_into_a_closed_pipe_stops_quietly_on_any_thread_count() {
    let dir = tmp_with_small_blobs("faults-pipe", 400);
    for threads in ["1", "2", "3"] {
        let flags = format!("--batch-size 1 --epochs 50 --threads {threads}");
        let mut child = train(&dir, &flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let first = first_line_then_close(&mut child);
        assert!(first.starts_with("Epoch: 0, Step: 0"), "{first}");
        let (st, err) = stderr_after_exit(&mut child, 120, "train into a closed pipe");
        assert_eq!(st.code(), Some(141), "threads {threads}: {err}");
        assert!(!err.contains("error"), "threads {threads}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// stdout on a full disk (`/dev/full`): one `error:` line, exit 2, and the checkpoint of the
/// last finished epoch is intact.
#[test]
fn train_with_a_full_stdout_reports_one_error_and_keeps_the_checkpoint() {
    let Some(dir) = blobs_if_dev_full("faults-full") else {
        return;
    };
    for threads in ["1", "2"] {
        let flags = format!("--batch-size 4 --epochs 2 --threads {threads}");
        // Step lines on: the first one fails.
        let o = train(&dir, &flags).stdout(dev_full()).output().unwrap();
        let line = assert_refused(&o, &["standard output", "No space left"]);
        assert!(!line.contains("--lr"), "{line}");
        // Step lines off: two epochs are checkpointed, then `Accuracy is:` fails.
        let o = train(&dir, &(flags + " --log-every 0"))
            .stdout(dev_full())
            .output()
            .unwrap();
        assert_refused(&o, &["standard output"]);
        let ck = catdog::checkpoint::load(&dir.join("run.ckpt")).unwrap();
        assert_eq!(ck.epochs_done, 2);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `eval` and `bench` print through the same checked writes.
#[test]
fn eval_and_bench_into_a_full_stdout_report_one_error() {
    let Some(dir) = blobs_if_dev_full("faults-full-eval") else {
        return;
    };
    let ck = train_one_epoch(&dir);
    let test = dir.join("test.bin");
    let mut eval = model();
    eval.args(["eval", "--params"])
        .arg(&ck)
        .arg("--data")
        .arg(&test);
    let mut predict = model();
    predict.args(["predict", "--params"]).arg(&ck).arg(&test);
    let mut bench = model();
    bench.args(["bench", "--batches", "1", "--image", "8", "--threads", "1"]);
    bench.args(SMALL_NET);
    for mut c in [eval, predict, bench] {
        let o = c.stdout(dev_full()).output().unwrap();
        assert_refused(&o, &["standard output"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `child`'s exit status and standard error once it has exited (see [`stderr_after_exit`]).
fn output_after_exit(child: &mut Child, secs: u64, what: &str) -> Output {
    let (status, err) = stderr_after_exit(child, secs, what);
    Output {
        status,
        stdout: Vec::new(),
        stderr: err.into_bytes(),
    }
}

/// A FIFO (or a device) given where a file is read is refused at once, not read forever.
#[test]
fn fifos_and_devices_are_refused_as_inputs_without_blocking() {
    let dir = tmp_with_small_blobs("faults-fifo", 32);
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let ck = train_one_epoch(&dir);
    let (test, zero) = (dir.join("test.bin"), PathBuf::from("/dev/zero"));
    let (eval, predict) = (Path::new("eval"), Path::new("predict"));
    let (params, data) = (Path::new("--params"), Path::new("--data"));
    let runs: [(Vec<&Path>, &str); 4] = [
        (vec![eval, params, &ck, data, &fifo], "named pipe"),
        (vec![eval, params, &fifo, data, &test], "named pipe"),
        (vec![predict, params, &ck, &fifo], "named pipe"),
        (vec![predict, params, &ck, &zero], "character device"),
    ];
    for (args, want) in runs {
        let mut child = model()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = output_after_exit(&mut child, 30, &format!("{args:?}"));
        assert_refused(&o, &[want, "regular file"]);
    }
    // The same for the trainer's blobs, --init and --resume.
    for flag in ["--train", "--test", "--init", "--resume"] {
        let mut args = train_args(&dir);
        match args.iter().position(|a| a == flag) {
            Some(i) => args[i + 1] = fifo.to_str().unwrap().into(),
            None => args.extend([flag.to_string(), fifo.to_str().unwrap().into()]),
        }
        let mut child = model()
            .args(&args)
            .args(["--epochs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (st, err) = stderr_after_exit(&mut child, 30, flag);
        assert_eq!(st.code(), Some(2), "{flag}: {err}");
        assert!(
            err.contains("pipe") || err.contains("regular file"),
            "{flag}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// An output naming an input (or another output) is refused before any work, and the input is
/// untouched; so is a name whose temporary file (`.NAME.PID.tmp`) would be too long.
#[test]
fn outputs_that_are_inputs_or_too_long_are_refused_before_any_work() {
    let dir = tmp_with_small_blobs("faults-same", 32);
    let train = dir.join("train.bin");
    let before = std::fs::read(&train).unwrap();
    // `extra` replaces a flag of `train_args` where it repeats one.
    let run = |extra: &[&std::ffi::OsStr]| {
        let mut args: Vec<std::ffi::OsString> =
            train_args(&dir).into_iter().map(Into::into).collect();
        if let Some(i) = args
            .iter()
            .position(|a| extra.first() == Some(&a.as_os_str()))
        {
            args.drain(i..i + 2);
        }
        model()
            .args(args)
            .args(["--batch-size", "4", "--epochs", "1", "--log-every", "0"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--checkpoint".as_ref(), train.as_os_str()]);
    assert_refused(&o, &["--checkpoint", "same file as --train"]);
    // Another name of the same file (a symbolic link) is the same file too.
    std::os::unix::fs::symlink(&train, dir.join("link.csv")).unwrap();
    let o = run(&["--metrics".as_ref(), dir.join("link.csv").as_os_str()]);
    assert_refused(&o, &["--metrics", "same file as --train"]);
    let o = run(&["--save".as_ref(), dir.join("test.bin").as_os_str()]);
    assert_refused(&o, &["--save", "same file as --test"]);
    // Two outputs on one path that does not exist yet: compared by canonical path.
    let m = dir.join("m.csv");
    let o = run(&[
        "--metrics".as_ref(),
        m.as_os_str(),
        "--plot".as_ref(),
        dir.join(".").join("m.csv").as_os_str(),
    ]);
    assert_refused(&o, &["are the same file"]);
    let o = run(&[
        "--checkpoint".as_ref(),
        m.as_os_str(),
        "--metrics".as_ref(),
        m.as_os_str(),
    ]);
    assert_refused(&o, &["--metrics", "--checkpoint", "same file"]);
    // A name that fits, but whose temporary name does not: refused before the epoch.
    let long = dir.join(format!("{}.csv", "m".repeat(245)));
    let o = run(&["--metrics".as_ref(), long.as_os_str()]);
    assert_refused(&o, &["--metrics", "too long"]);
    assert!(
        !dir.join("run.ckpt").exists(),
        "an epoch ran before the refusal"
    );
    assert_eq!(std::fs::read(&train).unwrap(), before);
    // eval --errors onto the data blob.
    let o = run(&[]);
    assert_ok(&o);
    let o = model()
        .args(["eval", "--params"])
        .arg(dir.join("run.ckpt"))
        .arg("--data")
        .arg(&train)
        .arg("--errors")
        .arg(&train)
        .output()
        .unwrap();
    assert_refused(&o, &["--errors", "same file as --data"]);
    assert_eq!(std::fs::read(&train).unwrap(), before);
    // Resuming into the checkpoint resumed from is the documented use, and stays allowed.
    let ck = dir.join("run.ckpt");
    let o = run(&["--resume".as_ref(), ck.as_os_str()]);
    assert_ok(&o);
    std::fs::remove_dir_all(&dir).ok();
}

/// Temporary files of killed runs (`.NAME.PID.tmp` of a dead PID) beside an output are removed
/// by the next run, which says so; those of live processes are not.
#[test]
fn stale_temporary_files_of_dead_runs_are_removed_and_reported() {
    let dir = tmp_with_small_blobs("faults-stale", 32);
    let dead = dir.join(".run.ckpt.4000000000.tmp");
    let dead_metrics = dir.join(".m.csv.3999999999.tmp");
    let live = dir.join(format!(".run.ckpt.{}.tmp", std::process::id()));
    let other = dir.join(".notes.txt.4000000000.tmp");
    for f in [&dead, &dead_metrics, &live, &other] {
        std::fs::write(f, vec![1u8; 1000]).unwrap();
    }
    let o = train(&dir, "--batch-size 4 --epochs 1 --log-every 0 --metrics")
        .arg(dir.join("m.csv"))
        .output()
        .unwrap();
    let err = stderr_of(&o);
    assert!(o.status.success(), "{err}");
    assert!(!dead.exists() && !dead_metrics.exists(), "{err}");
    assert!(live.exists() && other.exists(), "{err}");
    assert!(
        err.contains(&format!("removed {}", dead.display())),
        "{err}"
    );
    assert!(err.contains("left by an interrupted run"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Absurd `bench --batches` are refused with one line (were: an internal error, exit 101, and
/// an allocation abort with a backtrace, exit 134).
#[test]
fn absurd_bench_sizes_are_refused() {
    for batches in ["18446744073709551615", "100000000", "0"] {
        let o = model()
            .args(["bench", "--batches", batches, "--threads", "1"])
            .output()
            .unwrap();
        assert_refused(&o, &["--batches", batches]);
    }
    // Within the cap, but more images than memory holds.
    let o = model()
        .args([
            "bench",
            "--batches",
            "1000000",
            "--batch-size",
            "4096",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert_refused(&o, &["--batches", "memory"]);
    // A time to measure for that is not a number of seconds, or more than an hour.
    for secs in ["nan", "inf", "3601"] {
        let o = model()
            .args(["bench", "--min-seconds", secs, "--threads", "1"])
            .output()
            .unwrap();
        assert_refused(&o, &["--min-seconds", "between 0 and 3600"]);
    }
}

/// `predict`'s TSV escapes names (backslash escapes, like `ls -b`): a tab or line break in a
/// name cannot split a row, an escape sequence cannot reach the terminal, and a name that is
/// not UTF-8 is shown byte by byte.
#[test]
fn predict_escapes_names_in_its_tsv() {
    use catdog::blob::{write_blob, BlobMeta};
    use catdog::dataset::{Dataset, Synthetic};
    let dir = tmp("faults-names");
    let names: [&[u8]; 4] = [
        b"a\tb\nc.png",
        b"\xff\xfe.png",
        b"\x1b[2Jclear.png",
        b"back\\slash.png",
    ];
    let s = Synthetic::new(4, 8, 3);
    let meta = BlobMeta {
        height: 8,
        width: 8,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: vec![255; 4],
        sources: names.iter().map(|n| n.to_vec()).collect(),
        note: "names".into(),
    };
    write_blob(&dir.join("u.bin"), &meta, (0..4).map(|i| s.image(i))).unwrap();
    let h = catdog::testing::tiny_hyper();
    let shapes = h.shapes().unwrap();
    let mut p = vec![0.0f32; shapes.param_count()];
    catdog::parameters::he_init(&shapes, &mut p, 1);
    catdog::parameters::write_raw(&dir.join("p.raw"), &shapes, &p).unwrap();
    let o = model()
        .arg("predict")
        .args(SMALL_NET)
        .arg("--params")
        .arg(dir.join("p.raw"))
        .arg(dir.join("u.bin"))
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(!o.stdout.contains(&0x1b));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows.iter().all(|r| r.len() == 3), "{text}");
    let first: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        first,
        [
            "a\\tb\\nc.png",
            "\\xff\\xfe.png",
            "\\x1b[2Jclear.png",
            "back\\\\slash.png"
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The trainer refuses a train.bin and a test.bin that one split did not write together.
#[test]
fn train_refuses_a_mismatched_pair() {
    use catdog::blob::{BlobMeta, BlobWriter, Sibling};
    use catdog::dataset::{Dataset, Synthetic};
    let dir = tmp("faults-pair");
    let write = |name: &str, n: usize, seed: u64, sibling: Option<Sibling>| -> u32 {
        let s = Synthetic::new(n, 8, seed);
        let meta = BlobMeta {
            height: 8,
            width: 8,
            channels: 3,
            class_names: vec!["cat".into(), "dog".into()],
            labels: s.labels().to_vec(),
            sources: (0..n).map(|i| format!("{i}.png").into()).collect(),
            note: "pair".into(),
        };
        let mut w = BlobWriter::create_paired(&dir.join(name), &meta, sibling).unwrap();
        for i in 0..n {
            w.push(s.image(i)).unwrap();
        }
        w.finish().unwrap();
        catdog::blob::Blob::open(&dir.join(name))
            .unwrap()
            .header()
            .payload_crc
    };
    // test.bin of "another run": 8 samples, seed 2; train.bin says its test set had seed 3.
    let crc_other = write("other.bin", 8, 3, None);
    write("test.bin", 8, 2, None);
    write(
        "train.bin",
        32,
        1,
        Some(Sibling {
            count: 8,
            payload_crc: crc_other,
            is_test: true,
        }),
    );
    let o = train(&dir, "--batch-size 4 --epochs 1").output().unwrap();
    assert_refused(&o, &["train.bin", "test.bin", "are not a pair"]);
    assert!(!dir.join("run.ckpt").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// A blob truncated under a running `train` (another program rewrites it in place) gives one
/// `error:` line naming the file and exit code 2, not a silent death by SIGBUS.
#[test]
fn a_blob_truncated_under_a_running_train_gives_one_error_line() {
    let dir = tmp_with_small_blobs("faults-sigbus", 400);
    for threads in ["1", "2"] {
        synthetic_blob(&dir.join("train.bin"), 400, 8, 1);
        let flags = format!("--batch-size 1 --epochs 1000 --threads {threads}");
        let mut child = train(&dir, &(flags + " --no-checkpoint --no-shuffle"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("Epoch: 0"), "{line}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("train.bin"))
            .unwrap()
            .set_len(0)
            .unwrap();
        // Keep reading stdout, so the child never blocks on a full pipe.
        let drain = std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut sink);
        });
        let o = output_after_exit(&mut child, 120, "train on a truncated blob");
        drain.join().unwrap();
        assert_refused(&o, &["train.bin", "shrank"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}
