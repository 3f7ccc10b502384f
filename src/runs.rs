//! Where a training run keeps its checkpoint, and what `--resume` must agree with.
//!
//! A fresh run claims its own folder, `data/runs/N/` (N one more than the highest numbered run
//! folder, created atomically: two runs started together get two folders, and an empty folder
//! is never adopted), so a new run never replaces an earlier run's checkpoint; a run that stops
//! before its first checkpoint removes its folder again; `--resume last`
//! continues the newest. An explicit `--checkpoint FILE` that already holds an earlier run is
//! moved aside (to `FILE`'s stem plus `.N`, see [`set_aside`]) when the new run writes its first
//! checkpoint, and the trainer says where it went.
//!
//! On `--resume`, the checkpoint's settings are the run's settings: a flag left out takes the
//! checkpoint's value, a flag given with another value is refused (exit 2) and named, unless
//! `--force`. The data must be the data the run was trained on (blob checksums), and `--epochs`
//! cannot go below the epochs already done.

use crate::blob::Blob;
use crate::checkpoint::{BlobId, Checkpoint, Validation};
use crate::cli::{recipe, TrainArgs};
use crate::config::{Hyper, Recipe, Schedule};
use std::path::{Path, PathBuf};

/// The folder that holds one folder per run.
pub const RUNS_DIR: &str = "data/runs";
/// The checkpoint's name inside a run folder.
pub const CHECKPOINT_NAME: &str = "checkpoint.ckpt";
/// The metrics and curves a run folder keeps unless `--metrics`/`--plot` say otherwise.
pub const METRICS_NAME: &str = "metrics.csv";
pub const CURVES_NAME: &str = "curves.png";

/// Numbered run folders under `runs`, oldest first, with whether each holds anything.
fn run_dirs(runs: &Path) -> Vec<(u64, PathBuf, bool)> {
    let mut v: Vec<(u64, PathBuf, bool)> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u64>().ok()?;
            let p = e.path();
            if !p.is_dir() {
                return None;
            }
            let used = std::fs::read_dir(&p).map_or(true, |mut d| d.next().is_some());
            Some((n, p, used))
        })
        .collect();
    v.sort();
    v
}

/// The number after `last`, refusing to wrap around.
fn after(runs: &Path, last: u64) -> Result<u64, String> {
    last.checked_add(1).ok_or_else(|| {
        format!(
            "{}: a run folder is numbered {last}, the largest number there is: rename or move \
             it, or give --checkpoint FILE",
            runs.display()
        )
    })
}

/// The folder a new run would use (for `--dry-run`, which creates nothing): `runs/N`, N one
/// more than the highest numbered folder. An empty folder is not used again: another run may
/// have just claimed it.
pub fn new_run_dir(runs: &Path) -> Result<PathBuf, String> {
    let next = match run_dirs(runs).last() {
        Some((n, _, _)) => after(runs, *n)?,
        None => 1,
    };
    Ok(runs.join(next.to_string()))
}

/// The run folder this process claimed (see [`claim_run_dir`]), removed by
/// [`release_run_dir`] if the run stops before writing anything into it.
static CLAIMED: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Claims a folder for a new run: creates `runs/N` (N as [`new_run_dir`]) with a call that
/// fails if it exists, taking the next number until one is created, so two runs started
/// together never share a folder (nor one's checkpoint the other's).
pub fn claim_run_dir(runs: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(runs)
        .map_err(|e| format!("cannot create the runs folder {}: {e}", runs.display()))?;
    let mut dir = new_run_dir(runs)?;
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let n: u64 = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse().ok())
                    .expect("a number we made");
                dir = runs.join(after(runs, n)?.to_string());
            }
            Err(e) => {
                return Err(format!(
                    "cannot create the run folder {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    *CLAIMED.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.clone());
    Ok(dir)
}

/// Removes the run folder claimed by [`claim_run_dir`] if it is still empty (the run stopped
/// before its first checkpoint), so that no empty run folder is left behind.
pub fn release_run_dir() {
    if let Some(d) = CLAIMED.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = std::fs::remove_dir(d); // fails, as it should, once it holds anything
    }
}

/// The checkpoint of the newest run under `runs` that has one (`--resume last`).
pub fn last_checkpoint(runs: &Path) -> Result<PathBuf, String> {
    run_dirs(runs)
        .into_iter()
        .rev()
        .map(|(_, p, _)| p.join(CHECKPOINT_NAME))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "--resume last: no run under {} has a checkpoint yet ({}/N/{CHECKPOINT_NAME}); \
                 start one with ./model train",
                runs.display(),
                runs.display()
            )
        })
}

/// `--params last` and `--params best` of `eval`, `predict` and `export` (unless a file of
/// that name exists): the checkpoint of the newest run under `runs` that has one, or that
/// run's best validation epoch (`best.ckpt`, written by `--save-best`). Any other `p` as is.
pub fn resolve_params(p: &Path, runs: &Path) -> Result<PathBuf, String> {
    let which = p
        .to_str()
        .filter(|w| ["last", "best"].contains(w) && !p.exists());
    let Some(which) = which else {
        return Ok(p.to_path_buf());
    };
    let last = last_checkpoint(runs).map_err(|_| {
        format!(
            "--params {which}: no run under {} has a checkpoint yet; train one with \
                 ./model train, or give --params FILE",
            runs.display()
        )
    })?;
    let p = if which == "last" {
        last
    } else {
        let best = crate::fit::BestFiles::beside(&last).ckpt;
        if !best.is_file() {
            return Err(format!(
                "--params best: the newest run ({}) has no {}: it was trained without \
                 --save-best; use --params last, or give --params FILE",
                last.parent().unwrap_or(runs).display(),
                best.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        best
    };
    eprintln!("--params {which}: {}", p.display());
    Ok(p)
}

/// Moves an earlier run's file out of the way: `a/checkpoint.ckpt` becomes
/// `a/checkpoint.1.ckpt` (the first free number). Returns the new name.
pub fn set_aside(p: &Path) -> Result<PathBuf, String> {
    // Only an earlier run's file is moved: never a device, pipe or link that took its name.
    crate::guard::existing_output_ok(p, "--checkpoint")?;
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = p.extension().map(|s| s.to_string_lossy().into_owned());
    let stem = stem.unwrap_or_else(|| "checkpoint".into());
    for n in 1u32.. {
        let name = match &ext {
            Some(e) => format!("{stem}.{n}.{e}"),
            None => format!("{stem}.{n}"),
        };
        let to = p.with_file_name(name);
        if !to.exists() {
            std::fs::rename(p, &to).map_err(|e| {
                format!(
                    "{}: cannot move the earlier run's checkpoint aside to {}: {e}",
                    p.display(),
                    to.display()
                )
            })?;
            return Ok(to);
        }
    }
    unreachable!("u32 names exhausted")
}

/// Settles `--resume last` and the checkpoint path: the explicit `--checkpoint`, else the
/// resumed file, else a new run folder under `runs` (created here, unless `create` is false).
pub fn settle_paths(a: &mut TrainArgs, runs: &Path, create: bool) -> Result<(), String> {
    if a.resume.as_deref() == Some(Path::new("last")) && !Path::new("last").exists() {
        let p = last_checkpoint(runs)?;
        eprintln!("resuming the newest run: {}", p.display());
        a.resume = Some(p);
    }
    a.checkpoint = match (&a.checkpoint_flag, &a.resume) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => {
            let dir = if create && !a.no_checkpoint {
                let d = claim_run_dir(runs)?;
                // Ctrl-C before the first checkpoint leaves no empty folder either.
                crate::guard::on_interrupt_remove_dir(&d);
                d
            } else {
                new_run_dir(runs)?
            };
            dir.join(CHECKPOINT_NAME)
        }
    };
    // A run folder keeps its metrics and curves without being asked.
    let in_run_folder = a.checkpoint_flag.is_none()
        && !a.no_checkpoint
        && a.checkpoint.file_name() == Some(CHECKPOINT_NAME.as_ref());
    if in_run_folder {
        a.metrics
            .get_or_insert_with(|| a.checkpoint.with_file_name(METRICS_NAME));
        a.plot
            .get_or_insert_with(|| a.checkpoint.with_file_name(CURVES_NAME));
    }
    Ok(())
}

/// `w` as one word of a POSIX shell command: as it is when it has only safe characters, else
/// in single quotes.
pub fn shell_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !w.is_empty() && w.chars().all(safe) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The flags a run continued with `--resume` must repeat: the data, when not the defaults
/// (the resumed run checks it against the checkpoint's checksums).
pub fn resume_flags(a: &TrainArgs) -> String {
    let mut s = String::new();
    let test = a.test_path();
    for (flag, p, default) in [
        ("--train", Some(a.train.as_path()), "data/train.bin"),
        ("--test", test, "data/test.bin"),
    ] {
        if let Some(p) = p.filter(|p| *p != Path::new(default)) {
            s += &format!(" {flag} {}", shell_word(&p.to_string_lossy()));
        }
    }
    if test.is_none() {
        s += " --no-test";
    }
    if let Some(v) = &a.val {
        s += &format!(" --val {}", shell_word(&v.to_string_lossy()));
    }
    s
}

fn given(a: &TrainArgs, id: &str) -> bool {
    a.given.iter().any(|g| g == id)
}

fn onoff(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The settings of a resumed run: the checkpoint's, with the flags given on the command line
/// checked against them. A flag that differs is refused (naming each difference) unless
/// `a.force`, which lets the given values take effect. `--epochs` below the epochs done is
/// refused always. A `--limit` left out takes the checkpoint's.
pub fn resume_settings(
    ck: &Checkpoint,
    a: &mut TrainArgs,
    requested: &Hyper,
) -> Result<(Hyper, Recipe), String> {
    let c = &ck.hyper;
    let mut diffs: Vec<String> = Vec::new();
    let mut h = Hyper {
        threads: requested.threads,
        ..c.clone()
    };
    let mut differ = |flag: &str, was: String, now: String| {
        diffs.push(format!(
            "{flag}: the checkpoint's run has {was}, this command {now}"
        ));
    };
    if given(a, "epochs") && requested.epochs != c.epochs {
        if requested.epochs < ck.epochs_done {
            return Err(format!(
                "--epochs {}: the checkpoint has already done {} epochs; --epochs counts all \
                 epochs, so give at least {}",
                requested.epochs, ck.epochs_done, ck.epochs_done
            ));
        }
        // The warm-up is cut to fit a short run: a longer run may warm up longer.
        let warm = |epochs: usize| ck.recipe.warmup.min(epochs.saturating_sub(1));
        if ck.recipe.schedule == Schedule::Cosine || warm(c.epochs) != warm(requested.epochs) {
            // The learning rates of the epochs done were computed for the old length.
            differ(
                "--epochs (learning-rate schedule)",
                c.epochs.to_string(),
                requested.epochs.to_string(),
            );
        }
        h.epochs = requested.epochs;
    }
    if given(a, "batch_size") && requested.batch != c.batch {
        differ(
            "--batch-size",
            c.batch.to_string(),
            requested.batch.to_string(),
        );
    }
    if given(a, "lr") && requested.lr != c.lr {
        differ("--lr", c.lr.to_string(), requested.lr.to_string());
    }
    if given(a, "seed") && requested.seed != c.seed {
        differ("--seed", c.seed.to_string(), requested.seed.to_string());
    }
    if (given(a, "widths") && requested.widths != c.widths)
        || (given(a, "fc1") && requested.fc1 != c.fc1)
    {
        // The parameters have the checkpoint's shapes: this cannot be forced.
        return Err(format!(
            "cannot resume: the checkpoint's network has widths {:?} and fc1 {}, this command \
             asks for widths {:?} and fc1 {}",
            c.widths, c.fc1, requested.widths, requested.fc1
        ));
    }
    // The recipe: `--recipe` gives all of it, the other flags one part each.
    let asked = recipe(a)?;
    let all = given(a, "recipe");
    let r0 = &ck.recipe;
    // Each part: the ids of the flags that set it, and how a recipe's value reads; the part
    // differs where the two readings do (shortest round-trip floats: equal values read alike).
    // Crops' area reads as nothing without crops, where it does not apply.
    type Describe = fn(&Recipe) -> String;
    let parts: [(&[&str], Describe); 10] = [
        (&["no_shuffle"], |r| format!("shuffle {}", onoff(r.shuffle))),
        (&["flip", "augment"], |r| {
            format!("flips {}", onoff(r.flips))
        }),
        (&["augment"], |r| {
            format!("crops and colour jitter {}", onoff(r.crops))
        }),
        (&["crop_area"], |r| match r.crops {
            true => format!("crops of at least {}% of the area", r.crop_area),
            false => String::new(),
        }),
        (&["label_smoothing"], |r| {
            format!("label smoothing {}", r.label_smoothing)
        }),
        (&["warmup"], |r| format!("{} warm-up epochs", r.warmup)),
        (&["momentum"], |r| format!("momentum {}", r.momentum)),
        (&["weight_decay"], |r| {
            format!("weight decay {}", r.weight_decay)
        }),
        (&["dropout"], |r| format!("dropout {}", r.dropout)),
        (&["schedule"], |r| format!("{:?} schedule", r.schedule)),
    ];
    let mut recipe_differs = false;
    for (ids, describe) in parts {
        let id = ids.iter().find(|id| given(a, id));
        let (was, now) = (describe(r0), describe(&asked));
        let differs = was != now && !was.is_empty() && !now.is_empty();
        if differs && (all || id.is_some()) {
            let flag = match id {
                Some(id) => format!("--{}", id.replace('_', "-")),
                None => "--recipe".to_string(),
            };
            differ(&flag, was, now);
            recipe_differs = true;
        }
    }
    // Model selection: the checkpoint's validation set and --save-best, unless given (a
    // validation blob cannot be taken from the checkpoint: only its checksums are there).
    let ck_val = ck.selection.map(|s| s.val);
    let show = |v: Option<Validation>| match v {
        None => "no validation set".to_string(),
        Some(Validation::Fraction(f)) => format!("--val-fraction {f}"),
        Some(Validation::Blob(id)) => format!("a --val blob ({id})"),
    };
    match (a.val_fraction, &a.val, ck_val) {
        (Some(f), _, v) if v != Some(Validation::Fraction(f)) => {
            differ("--val-fraction", show(v), format!("--val-fraction {f}"))
        }
        (_, Some(p), v) if !matches!(v, Some(Validation::Blob(_))) => {
            differ("--val", show(v), format!("--val {}", p.display()))
        }
        (None, None, Some(Validation::Fraction(f))) => a.val_fraction = Some(f),
        (None, None, Some(Validation::Blob(id))) => {
            return Err(format!(
                "--resume {}: the run validates on a blob ({id}): give it again with --val PATH",
                a.resume.as_deref().unwrap_or(Path::new("?")).display()
            ))
        }
        _ => {}
    }
    // A run trained with --no-test goes on without a test blob, unless --test is given (which
    // `check_resume_data` refuses without --force).
    if ck.run.is_some_and(|r| r.test.is_none()) && !given(a, "test") {
        a.no_test = true;
    }
    // Switches of model selection go on as the run began; one it did not have is a change
    // (--val-tta: the epochs chosen so far were chosen on what the validation pass measured).
    let sel = ck.selection;
    for (flag, on, was) in [
        (
            "--save-best",
            &mut a.save_best,
            sel.is_some_and(|s| s.save_best),
        ),
        ("--val-tta", &mut a.val_tta, sel.is_some_and(|s| s.tta)),
    ] {
        if *on && !was {
            differ(flag, "it off".into(), "it on".into());
        }
        *on |= was;
    }
    let run = ck.run;
    if let Some(run) = run {
        if given(a, "limit") && a.limit.map(|l| l as u64) != run.limit {
            let f = |l: Option<u64>| l.map_or("no --limit".to_string(), |l| format!("--limit {l}"));
            differ("--limit", f(run.limit), f(a.limit.map(|l| l as u64)));
        }
        if !given(a, "limit") {
            a.limit = run.limit.map(|l| l as usize);
        }
    }
    if !diffs.is_empty() && !a.force {
        return Err(format!(
            "--resume {}: {} (resume with the run's own settings by leaving these flags out, or \
             add --force to continue with the new ones)",
            a.resume.as_deref().unwrap_or(Path::new("?")).display(),
            diffs.join("; ")
        ));
    }
    if a.force {
        for d in &diffs {
            eprintln!("note: --force: {d}; the new value takes effect");
        }
        if given(a, "batch_size") {
            h.batch = requested.batch;
        }
        if given(a, "lr") {
            h.lr = requested.lr;
        }
        if given(a, "seed") {
            h.seed = requested.seed;
        }
    }
    let r = if a.force && recipe_differs {
        asked
    } else {
        ck.recipe.clone()
    };
    Ok((h, r))
}

/// Refuses to resume on data other than the run's (blob checksums), unless `force`; a version 1
/// checkpoint, which records no data, is refused too (it cannot be checked).
pub fn check_resume_data(
    ck: &Checkpoint,
    ck_path: &Path,
    train: &Blob,
    test: Option<&Blob>,
    val: Option<&Blob>,
    force: bool,
) -> Result<(), String> {
    let mut diffs = Vec::new();
    match &ck.run {
        None => diffs.push(
            "the checkpoint was written by an older version and records no data checksums, so \
             the data cannot be checked"
                .to_string(),
        ),
        Some(run) => {
            for (what, blob, want) in [
                ("training", Some(train), Some(run.train)),
                ("test", test, run.test),
            ] {
                match (blob.map(|b| (b, BlobId::of(b))), want) {
                    (Some((blob, have)), Some(want)) if have != want => diffs.push(format!(
                        "{what} data {} ({have}) is not the run's ({want})",
                        blob.path().display()
                    )),
                    (Some((blob, _)), None) => diffs.push(format!(
                        "the run had no {what} data (--no-test) but {} is given",
                        blob.path().display()
                    )),
                    (None, Some(want)) => diffs.push(format!(
                        "the run was tested on {what} data ({want}) but --no-test is given"
                    )),
                    _ => {}
                }
            }
        }
    }
    if let (Some(blob), Some(Validation::Blob(want))) = (val, ck.selection.map(|s| s.val)) {
        let have = BlobId::of(blob);
        if have != want {
            diffs.push(format!(
                "validation data {} ({have}) is not the run's ({want})",
                blob.path().display()
            ));
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    if force {
        for d in &diffs {
            eprintln!("note: --force: {d}");
        }
        return Ok(());
    }
    Err(format!(
        "--resume {}: {} (give the run's --train, --test or --no-test, and --val, or add --force to continue on this data)",
        ck_path.display(),
        diffs.join("; ")
    ))
}
