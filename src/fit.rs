//! The training run around the loops of [`crate::train`]: epochs with a progress bar, the
//! validation and test sets evaluated after each, the best validation epoch kept
//! (`--save-best`), the checkpoint, metrics and plot written after each (the product side of
//! the original's `_start.asm`). The best epoch is chosen on the validation set only, never on
//! the test set.

use crate::dataset::Dataset;
use crate::network::EpochOptions;
use crate::network::Network;
use crate::report::{accuracy, mean_bce, original_accuracy};
use crate::schedule::{epoch_lr, epoch_order};
use std::time::Instant;

/// Everything [`fit`] needs besides the network and the data.
pub struct FitConfig {
    pub recipe: crate::config::Recipe,
    pub log_every: usize,
    /// Samples of the training set to use (the first `n_train`).
    pub n_train: usize,
    /// Written after every epoch (atomically), for `--resume`.
    pub checkpoint: Option<std::path::PathBuf>,
    pub metrics: Option<std::path::PathBuf>,
    pub plot: Option<std::path::PathBuf>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Limit and data checksums, recorded in the checkpoint so `--resume` can check them.
    pub run: Option<crate::checkpoint::RunRecord>,
    /// A file already under the checkpoint's name belongs to an earlier run: move it aside
    /// (saying where) before the first checkpoint is written.
    pub set_aside: bool,
    /// Flags besides `--resume FILE` that a continuing run needs (non-default data paths),
    /// for the line an interrupt prints, e.g. ` --train a.bin --test b.bin`.
    pub resume_flags: String,
    /// With `--save-best`: where the best validation epoch's parameters and checkpoint go.
    pub best: Option<BestFiles>,
    /// A run resumed into another checkpoint file: its best epoch's files, copied beside the
    /// new checkpoint before the first one is written (the best record still names them).
    pub best_from: Option<BestFiles>,
}

/// The files of the best validation epoch, beside the run's checkpoint.
#[derive(Clone, Debug)]
pub struct BestFiles {
    /// Its parameters, in the original's `parameters.raw` format.
    pub raw: std::path::PathBuf,
    /// Its checkpoint (the network's shapes included, so `eval --params` needs no flags).
    pub ckpt: std::path::PathBuf,
}

impl BestFiles {
    /// Beside `checkpoint`: `best.raw` and `best.ckpt` for a run folder's `checkpoint.ckpt`,
    /// else `STEM.best.raw` and `STEM.best.ckpt`.
    pub fn beside(checkpoint: &std::path::Path) -> Self {
        let stem = checkpoint
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = if checkpoint.file_name() == Some(crate::runs::CHECKPOINT_NAME.as_ref()) {
            "best".to_string()
        } else {
            format!("{stem}.best")
        };
        Self {
            raw: checkpoint.with_file_name(format!("{base}.raw")),
            ckpt: checkpoint.with_file_name(format!("{base}.ckpt")),
        }
    }
}

/// The data of a run: training samples, the validation set (if any) and the test set (none
/// with `--no-test`).
pub struct Sets<'a> {
    pub train: &'a dyn Dataset,
    pub val: Option<&'a dyn Dataset>,
    pub test: Option<&'a dyn Dataset>,
}

/// What an interrupt keeps after `epochs_done` epochs of `total`: the checkpoint and the
/// command that continues, or that nothing was kept.
fn interrupt_line(cfg: &FitConfig, epochs_done: usize, total: usize, ours: bool) -> String {
    match &cfg.checkpoint {
        Some(p) if epochs_done > 0 && ours => format!(
            "interrupted: kept {} (after epoch {epochs_done} of {total}); continue with: \
             ./model train --resume {}{}",
            p.display(),
            crate::runs::shell_word(&p.to_string_lossy()),
            cfg.resume_flags
        ),
        Some(_) => {
            "interrupted before this run's first checkpoint: no checkpoint of this run was written"
                .into()
        }
        None => "interrupted: nothing was kept (--no-checkpoint)".into(),
    }
}

/// Trains epochs `first_epoch..=net.hyper().epochs`, evaluating on the validation set and the
/// test set (each if any) after each, appending to `history`, updating the best validation epoch
/// in `selection` (and with [`FitConfig::best`] writing its files), and writing the checkpoint,
/// metrics and plot after each epoch. Returns the last evaluated epoch's [`original_accuracy`]
/// on the test set (`None` when no epoch ran or there is no test set).
pub fn fit(
    net: &mut dyn Network,
    sets: &Sets,
    cfg: &FitConfig,
    first_epoch: usize,
    history: &mut Vec<crate::metrics::EpochRecord>,
    selection: &mut Option<crate::checkpoint::Selection>,
) -> Result<Option<f32>, String> {
    let (train, test) = (sets.train, sets.test);
    let h = net.hyper().clone();
    let mut last_accuracy = None;
    let r = &cfg.recipe;
    let started = Instant::now();
    let elapsed_before = history.last().map(|e| e.elapsed_s).unwrap_or(0.0);
    // A resumed run's own file holds the epochs before `first_epoch`.
    crate::guard::on_interrupt_say(&interrupt_line(
        cfg,
        first_epoch - 1,
        h.epochs,
        !cfg.set_aside,
    ));
    for epoch in first_epoch..=h.epochs {
        let lr = epoch_lr(h.lr, r.schedule, r.warmup, epoch, h.epochs);
        let opts = EpochOptions {
            log_every: cfg.log_every,
            flips: r.flips,
            crops: r.crops,
            crop_area: r.crop_area,
            label_smoothing: r.label_smoothing,
            lr,
            momentum: r.momentum,
            weight_decay: r.weight_decay,
            dropout: r.dropout,
            seed: h.seed,
        };
        let order = epoch_order(cfg.n_train, r.shuffle, h.seed, epoch);
        let bar = cfg.progress.then(|| {
            let bar = indicatif::ProgressBar::new((cfg.n_train / h.batch * h.batch) as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} samples, {msg}, {rate}, ETA {eta}",
                )
                .expect("valid template")
                .with_key(
                    "rate",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&crate::metrics::rate(s.per_sec(), "samples/s"));
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", h.epochs));
            bar
        });
        let on_step = |_step: usize, loss: f32| {
            if let Some(b) = &bar {
                b.set_message(format!("loss {loss:.4}"));
                b.inc(h.batch as u64);
            }
        };
        let st = net.run_epoch(&crate::network::Epoch {
            on_step: Some(&on_step),
            ..crate::network::Epoch::new(train, &order, epoch, &opts)
        });
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let st = st.map_err(|e| stop_message(e, cfg, history))?;
        if let Some(i) = net.params().iter().position(|v| !v.is_finite()) {
            let name = crate::parameters::tensor_of(net.shapes(), i);
            return Err(stop_message(
                format!("parameter {i} ({name}) became non-finite in epoch {epoch}"),
                cfg,
                history,
            ));
        }
        let probs = test.map(|t| net.predict(t));
        let val_tta = selection.is_some_and(|s| s.tta);
        let val_probs = match sets.val {
            Some(v) if val_tta => {
                Some(crate::infer::predict_tta(net, v).map_err(|e| stop_message(e, cfg, history))?)
            }
            Some(v) => Some(net.predict(v)),
            None => None,
        };
        // The data must still be what the run opened: an epoch on a blob rewritten under the
        // run (another split copied over it, bytes zeroed) must not reach a checkpoint.
        for d in [Some(train), test, sets.val].into_iter().flatten() {
            d.check_unchanged()
                .map_err(|e| stop_message(e, cfg, history))?;
        }
        let tested = test.zip(probs.as_deref()).map(|(t, p)| (t.labels(), p));
        last_accuracy = tested.map(|(labels, p)| original_accuracy(p, labels));
        let rec = crate::metrics::EpochRecord {
            epoch,
            train_loss: st.mean_loss,
            test_accuracy: tested.map(|(labels, p)| accuracy(p, labels)),
            test_loss: tested.map(|(labels, p)| mean_bce(p, labels)),
            samples_per_s: st.samples as f64 / st.seconds,
            elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
            lr,
            val_accuracy: None,
            val_loss: None,
        };
        let rec = match (sets.val, &val_probs) {
            (Some(v), Some(p)) => crate::metrics::EpochRecord {
                val_accuracy: Some(accuracy(p, v.labels())),
                val_loss: Some(mean_bce(p, v.labels())),
                ..rec
            },
            _ => rec,
        };
        let val_part = match (rec.val_loss, rec.val_accuracy) {
            (Some(l), Some(a)) => {
                let tta = if val_tta { " (TTA)" } else { "" };
                format!(", val loss {l:.4}, val accuracy {a:.4}{tta}")
            }
            _ => String::new(),
        };
        let test_part = match (rec.test_loss, rec.test_accuracy) {
            (Some(l), Some(a)) => format!(", test loss {l:.4}, test accuracy {a:.4}"),
            _ => String::new(),
        };
        crate::errln!(
            "epoch {epoch}/{}: train loss {:.4}{val_part}{test_part}, {:.1} samples/s, {:.1} s elapsed",
            h.epochs,
            rec.train_loss,
            rec.samples_per_s,
            rec.elapsed_s
        )
        .map_err(|e| stop_message(e, cfg, history))?;
        // Selection looks at the validation set only; a tie keeps the earlier epoch.
        let mut better = false;
        if let (Some(sel), Some(acc)) = (selection.as_mut(), rec.val_accuracy) {
            if sel.best.is_none_or(|(_, b)| acc > b) {
                sel.best = Some((epoch, acc));
                better = true;
            }
        }
        history.push(rec);
        if let Some(p) = &cfg.checkpoint {
            if cfg.set_aside && epoch == first_epoch {
                let best = cfg.best.iter().flat_map(|b| [&b.ckpt, &b.raw]);
                for f in std::iter::once(p).chain(best).filter(|f| f.exists()) {
                    let to = crate::runs::set_aside(f)?;
                    eprintln!(
                        "moved the earlier run's {} aside to {}",
                        f.display(),
                        to.display()
                    );
                }
                if let (Some(from), Some(to)) = (&cfg.best_from, &cfg.best) {
                    for (a, b) in [(&from.ckpt, &to.ckpt), (&from.raw, &to.raw)] {
                        let bytes = std::fs::read(a)
                            .map_err(|e| format!("{}: cannot read: {e}", a.display()))?;
                        crate::guard::write_atomic(b, &bytes)?;
                    }
                }
            }
            let ck = crate::checkpoint::CheckpointRef {
                hyper: &h,
                recipe: r,
                epochs_done: epoch,
                rng_state: h.seed,
                params: net.params(),
                velocity: net.velocity_values(),
                history,
                run: cfg.run.as_ref(),
                selection: selection.as_ref(),
            };
            // The best epoch's files before the checkpoint that records them: a kill between
            // the two leaves a checkpoint naming an earlier best, and the resumed run repeats
            // this epoch bit for bit and writes them again.
            if let (true, Some(b)) = (better, &cfg.best) {
                crate::checkpoint::save(&b.ckpt, &ck)?;
                crate::parameters::write_raw(&b.raw, net.shapes(), net.params())?;
            }
            crate::checkpoint::save(p, &ck)?;
            crate::guard::on_interrupt_say(&interrupt_line(cfg, epoch, h.epochs, true));
        }
        // Test hook: die like a crash right after this epoch's checkpoint (resume tests).
        if std::env::var("CATDOG_TEST_ABORT_AFTER_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok())
            == Some(epoch)
        {
            std::process::abort();
        }
        if let Some(p) = &cfg.metrics {
            crate::metrics::write_csv(p, history)?;
        }
        if let Some(p) = &cfg.plot {
            crate::plot::write_curves(p, history, "catdog training")?;
        }
        if let Some((e, acc)) = selection.and_then(|s| s.best) {
            let kept = match (&cfg.best, better) {
                (Some(b), true) => format!("; kept in {}", b.raw.display()),
                _ => String::new(),
            };
            let with = selection.map_or("", |s| s.tta_note());
            crate::errln!("best so far: epoch {e} (val acc {acc:.4}{with}){kept}")?;
        }
    }
    Ok(last_accuracy)
}

fn stop_message(e: String, cfg: &FitConfig, history: &[crate::metrics::EpochRecord]) -> String {
    // Lowering the learning rate helps a diverging run, not a failed write to stdout/stderr.
    let diverged = !e.contains("standard output")
        && !e.contains("standard error")
        && !e.contains("changed while this run");
    match (&cfg.checkpoint, history.last()) {
        (Some(p), Some(last)) => format!(
            "{e}; training stopped. The last good checkpoint, {} (after epoch {}), is intact{}",
            p.display(),
            last.epoch,
            if diverged { ": lower --lr and resume from it" } else { "" }
        ),
        (Some(p), None) if p.exists() => format!(
            "{e}; training stopped before this run's first checkpoint. {} (from an earlier run) was not touched",
            p.display()
        ),
        _ => format!(
            "{e}; training stopped (no checkpoint was written yet){}",
            if diverged { ": lower --lr and start again" } else { "" }
        ),
    }
}
