//! Where a training run keeps its checkpoint, and what `--resume` must agree with.
//!
//! A fresh run gets its own folder, `data/runs/N/` (N one more than the newest run folder that
//! holds anything), so a new run never replaces an earlier run's checkpoint; `--resume last`
//! continues the newest. An explicit `--checkpoint FILE` that already holds an earlier run is
//! moved aside (to `FILE`'s stem plus `.N`, see [`set_aside`]) when the new run writes its first
//! checkpoint, and the trainer says where it went.
//!
//! On `--resume`, the checkpoint's settings are the run's settings: a flag left out takes the
//! checkpoint's value, a flag given with another value is refused (exit 2) and named, unless
//! `--force`. The data must be the data the run was trained on (blob checksums), and `--epochs`
//! cannot go below the epochs already done.

use crate::blob::Blob;
use crate::checkpoint::{BlobId, Checkpoint};
use crate::cli::{recipe, TrainArgs};
use crate::config::{Hyper, Recipe, Schedule};
use std::path::{Path, PathBuf};

/// The folder that holds one folder per run.
pub const RUNS_DIR: &str = "data/runs";
/// The checkpoint's name inside a run folder.
pub const CHECKPOINT_NAME: &str = "checkpoint.ckpt";

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

/// The folder a new run uses: `runs/N`, N one more than the newest folder that holds anything
/// (an empty folder left by a run that failed before its first epoch is used again).
pub fn new_run_dir(runs: &Path) -> PathBuf {
    let next = run_dirs(runs)
        .iter()
        .filter(|(_, _, used)| *used)
        .map(|(n, _, _)| n + 1)
        .max()
        .unwrap_or(1);
    runs.join(next.to_string())
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

/// Moves an earlier run's file out of the way: `a/checkpoint.ckpt` becomes
/// `a/checkpoint.1.ckpt` (the first free number). Returns the new name.
pub fn set_aside(p: &Path) -> Result<PathBuf, String> {
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
            let dir = new_run_dir(runs);
            if create && !a.no_checkpoint {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create the run folder {}: {e}", dir.display()))?;
            }
            dir.join(CHECKPOINT_NAME)
        }
    };
    Ok(())
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
        if ck.recipe.schedule == Schedule::Cosine {
            // The learning rates of the epochs done were computed for the old length.
            differ(
                "--epochs (cosine schedule)",
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
    // Each part: its flag's id, whether it differs, and how a recipe's value reads.
    type Describe = fn(&Recipe) -> String;
    let parts: [(&str, bool, Describe); 6] = [
        ("no_shuffle", r0.shuffle != asked.shuffle, |r| {
            format!("shuffle {}", onoff(r.shuffle))
        }),
        ("flip", r0.flips != asked.flips, |r| {
            format!("flips {}", onoff(r.flips))
        }),
        ("momentum", r0.momentum != asked.momentum, |r| {
            format!("momentum {}", r.momentum)
        }),
        ("weight_decay", r0.weight_decay != asked.weight_decay, |r| {
            format!("weight decay {}", r.weight_decay)
        }),
        ("dropout", r0.dropout != asked.dropout, |r| {
            format!("dropout {}", r.dropout)
        }),
        ("schedule", r0.schedule != asked.schedule, |r| {
            format!("{:?} schedule", r.schedule)
        }),
    ];
    let mut recipe_differs = false;
    for (id, differs, describe) in parts {
        if differs && (all || given(a, id)) {
            let flag = if all {
                "--recipe".to_string()
            } else {
                format!("--{}", id.replace('_', "-"))
            };
            differ(&flag, describe(r0), describe(&asked));
            recipe_differs = true;
        }
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
    test: &Blob,
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
            for (what, blob, want) in [("training", train, run.train), ("test", test, run.test)] {
                let have = BlobId::of(blob);
                if have != want {
                    diffs.push(format!(
                        "{what} data {} ({have}) is not the run's ({want})",
                        blob.path().display()
                    ));
                }
            }
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
        "--resume {}: {} (give the run's --train/--test, or add --force to continue on this data)",
        ck_path.display(),
        diffs.join("; ")
    ))
}
