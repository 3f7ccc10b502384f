//! The training run around the loops of [`crate::train`]: epochs with a progress bar, the test
//! set evaluated after each, the checkpoint, metrics and plot written after each (the product
//! side of the original's `_start.asm`).

use crate::dataset::Dataset;
use crate::network::EpochOptions;
use crate::network::Network;
use crate::train::{accuracy, epoch_lr, epoch_order, mean_bce, original_accuracy};
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

/// Trains epochs `first_epoch..=net.hyper().epochs`, evaluating on `test` after each, appending
/// to `history`, and writing the checkpoint, metrics and plot after each epoch. Returns the last
/// evaluated epoch's [`original_accuracy`] (`None` when no epoch ran).
pub fn fit(
    net: &mut dyn Network,
    train: &dyn Dataset,
    test: &dyn Dataset,
    cfg: &FitConfig,
    first_epoch: usize,
    history: &mut Vec<crate::metrics::EpochRecord>,
) -> Result<Option<f32>, String> {
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
        let st = net.run_epoch(train, &order, epoch, &opts, Some(&on_step));
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
        let probs = net.predict(test);
        // The data must still be what the run opened: an epoch on a blob rewritten under the
        // run (another split copied over it, bytes zeroed) must not reach a checkpoint.
        for d in [train, test] {
            d.check_unchanged()
                .map_err(|e| stop_message(e, cfg, history))?;
        }
        last_accuracy = Some(original_accuracy(&probs, test.labels()));
        let rec = crate::metrics::EpochRecord {
            epoch,
            train_loss: st.mean_loss,
            test_accuracy: Some(accuracy(&probs, test.labels())),
            test_loss: Some(mean_bce(&probs, test.labels())),
            samples_per_s: st.samples as f64 / st.seconds,
            elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
            lr,
        };
        crate::errln!(
            "epoch {epoch}/{}: train loss {:.4}, test loss {:.4}, test accuracy {:.4}, {:.1} samples/s, {:.1} s elapsed",
            h.epochs,
            rec.train_loss,
            rec.test_loss.unwrap_or(f64::NAN),
            rec.test_accuracy.unwrap_or(f64::NAN),
            rec.samples_per_s,
            rec.elapsed_s
        )
        .map_err(|e| stop_message(e, cfg, history))?;
        history.push(rec);
        if let Some(p) = &cfg.checkpoint {
            if cfg.set_aside && epoch == first_epoch && p.exists() {
                let to = crate::runs::set_aside(p)?;
                eprintln!(
                    "moved the earlier run's checkpoint {} aside to {}",
                    p.display(),
                    to.display()
                );
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
            };
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
