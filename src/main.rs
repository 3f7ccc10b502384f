//! `model`: train, evaluate, predict and benchmark the cat-vs-dog CNN. See README.md for every
//! flag. Bad input ends with one `error: ...` line and exit code 2.

use catdog::builder;
use catdog::checkpoint;
use catdog::cli::*;
use catdog::config::Hyper;
use catdog::config::Kernels;
use catdog::contact_sheet::{self, Tile};
use catdog::dataset::{open_blob, Synthetic};
use catdog::fit::{self, FitConfig};
use catdog::guard;
use catdog::net::Net;
use catdog::network::{self, Network};
use catdog::network::{Epoch, EpochOptions};
use catdog::packer_cmd;
use catdog::parameters;
use catdog::report;
use catdog::report::Confusion;
use catdog::runs;
use catdog::{errln, out, outln};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn make_net(h: &Hyper, arch: &ArchArgs, momentum: bool) -> Result<Box<dyn Network>, String> {
    builder::network(h, arch.kernels()?, momentum, arch.conv.choice())
}

/// A training run ready to start: what `prepare_training` set up, for `fit::fit` and
/// `finish_training`.
struct Training {
    a: TrainArgs,
    net: Box<dyn Network>,
    train_blob: catdog::blob::Blob,
    /// `None` with `--no-test`.
    test_blob: Option<catdog::blob::Blob>,
    /// `--val PATH`.
    val_blob: Option<catdog::blob::Blob>,
    /// `--val-fraction F`: the training and validation samples of `train_blob`.
    split: Option<catdog::split::Split>,
    /// The validation set's source and the best epoch so far (`None` without validation).
    selection: Option<checkpoint::Selection>,
    cfg: FitConfig,
    first_epoch: usize,
    history: Vec<catdog::metrics::EpochRecord>,
}

/// `model train` up to the first epoch: data (fetched on a first run), settings (resumed from a
/// checkpoint when asked), every check on inputs and outputs, the network and its parameters.
/// `None` for `--dry-run`, which prints the plan and stops.
fn prepare_training(mut a: TrainArgs) -> Result<Option<Training>, String> {
    if let Some(f) = a.val_fraction {
        if !(f > 0.0 && f < 1.0) {
            return Err(format!(
                "--val-fraction {f} is not usable: it must be between 0 and 1 (e.g. 0.1)"
            ));
        }
    }
    fetch_if_no_data(&a)?;
    let create = !a.dry_run;
    runs::settle_paths(&mut a, Path::new(runs::RUNS_DIR), create)?;
    let mut h = hyper(&a.arch, 128, a.batch_size)?;
    h.epochs = a.epochs.unwrap_or(a.recipe.epochs());
    h.lr = a.lr;
    h.seed = a.seed;
    let mut r = recipe(&a)?;
    let resumed = match &a.resume {
        Some(p) => Some(checkpoint::load(p)?),
        None => None,
    };
    if let Some(ck) = &resumed {
        // The run continues as it was configured: a flag that contradicts it is refused.
        (h, r) = runs::resume_settings(ck, &mut a, &h)?;
    }
    for (on, flag, what) in [
        (
            a.save_best,
            "--save-best",
            "chooses the epoch by its validation accuracy",
        ),
        (
            a.val_tta,
            "--val-tta",
            "evaluates the validation set with test-time augmentation",
        ),
    ] {
        if on && a.val_fraction.is_none() && a.val.is_none() {
            return Err(format!(
                "{flag} {what}: give --val-fraction F (e.g. 0.1) or --val PATH"
            ));
        }
    }
    if a.save_best && a.no_checkpoint {
        return Err(
            "--save-best keeps the best epoch beside the run's checkpoint: drop \
                    --no-checkpoint"
                .into(),
        );
    }
    let best_files = a.save_best.then(|| fit::BestFiles::beside(&a.checkpoint));
    let momentum = r.momentum != 0.0 || r.weight_decay != 0.0;
    h.shapes()?; // every hyperparameter is checked before any file is touched
    let kernels = a.arch.kernels()?;
    let extras = r.crops || r.label_smoothing != 0.0;
    if kernels == Kernels::Original && (momentum || extras || r.flips || r.dropout != 0.0) {
        return Err(network::ORIGINAL_RECIPE_ONLY.into());
    }
    if kernels == Kernels::Original && a.val_tta {
        return Err(
            "--val-tta mirrors each validation image, which the original kernels cannot: \
             use --kernels fast or portable"
                .into(),
        );
    }
    if a.dry_run {
        // The plan is for the data's image size, and missing data is refused as in a real run.
        let train_blob = open_blob(&a.train, "training", true)?;
        if let Some(t) = a.test_path() {
            open_blob(t, "test", true)?;
        }
        if let Some(v) = &a.val {
            open_blob(v, "validation", true)?;
        }
        if resumed.is_none() {
            h.image = train_blob.dims().0;
        }
        outln!(
            "plan: image {}x{} (from {}), widths {:?}, fc1 {}, batch {}, threads {}",
            h.image,
            h.image,
            a.train.display(),
            h.widths,
            h.fc1,
            h.batch,
            h.threads
        )?;
        match kernels {
            Kernels::Original => {
                #[cfg(target_arch = "x86_64")]
                outln!(
                    "{}",
                    catdog::original::OriginalNet::new(
                        &h,
                        catdog::cpu::require_avx512("original")?
                    )?
                    .memory_report()
                )?;
            }
            _ => outln!("{}", Net::plan(&h, kernels, momentum)?.report())?,
        }
        return Ok(None);
    }
    // Every file this run will write is checked now, not after hours of training.
    let outputs = [
        (!a.no_checkpoint).then_some((&a.checkpoint, "--checkpoint")),
        a.save.as_ref().map(|p| (p, "--save")),
        a.metrics.as_ref().map(|p| (p, "--metrics")),
        a.plot.as_ref().map(|p| (p, "--plot")),
        best_files.as_ref().map(|b| (&b.raw, "--save-best")),
        best_files.as_ref().map(|b| (&b.ckpt, "--save-best")),
    ];
    let outputs: Vec<(&Path, &str)> = outputs
        .into_iter()
        .flatten()
        .map(|(p, f)| (p.as_path(), f))
        .collect();
    let inputs = [
        Some((a.train.as_path(), "--train")),
        a.test_path().map(|p| (p, "--test")),
        a.init.as_deref().map(|p| (p, "--init")),
        a.val.as_deref().map(|p| (p, "--val")),
    ];
    let inputs: Vec<(&Path, &str)> = inputs.into_iter().flatten().collect();
    guard::check_outputs(&inputs, &outputs)?;
    if let Some(r) = &a.resume {
        // The checkpoint may be the one resumed from (it is read whole before any write).
        let others: Vec<(&Path, &str)> = outputs
            .iter()
            .filter(|o| o.1 != "--checkpoint")
            .copied()
            .collect();
        guard::check_outputs(&[(r.as_path(), "--resume")], &others)?;
    }
    let out_paths: Vec<&Path> = outputs.iter().map(|o| o.0).collect();
    guard::clean_stale_beside(&out_paths, "")?;
    if let Some(p) = &a.plot {
        check_plot_name(p)?;
    }
    let train_blob = open_blob(&a.train, "training", true)?;
    let test_blob = match a.test_path() {
        Some(p) => {
            let t = open_blob(p, "test", true)?;
            catdog::blob::check_pair(&train_blob, &t)?;
            Some(t)
        }
        None => None,
    };
    let val_blob = match &a.val {
        Some(p) => Some(open_val(p, &train_blob, test_blob.as_ref())?),
        None => None,
    };
    if let (Some(ck), Some(p)) = (&resumed, &a.resume) {
        let test = test_blob.as_ref();
        runs::check_resume_data(ck, p, &train_blob, test, val_blob.as_ref(), a.force)?;
    }
    if resumed.is_none() {
        h.image = train_blob.dims().0;
    } else if h.image != train_blob.dims().0 {
        return Err(format!(
            "{}: images are {}x{} but the checkpoint's network takes {}x{}",
            a.train.display(),
            train_blob.dims().0,
            train_blob.dims().1,
            h.image,
            h.image
        ));
    }
    if let Some(t) = test_blob.as_ref().filter(|t| t.dims() != train_blob.dims()) {
        return Err(format!(
            "{} has {:?} images but {} has {:?}: pack both with the same --size",
            a.train.display(),
            train_blob.dims(),
            a.test.display(),
            t.dims()
        ));
    }
    let mut net = make_net(&h, &a.arch, momentum)?;
    let shapes = net.shapes().clone();
    let mut history = Vec::new();
    let mut first_epoch = 1;
    match (&resumed, &a.init) {
        (Some(_), Some(_)) => return Err("--resume and --init cannot be used together".into()),
        (Some(ck), None) => {
            checkpoint::check_compatible(ck, &h)?;
            net.params_mut().copy_from_slice(&ck.params);
            if !ck.velocity.is_empty() {
                net.velocity_values_mut().copy_from_slice(&ck.velocity);
            }
            history = ck.history.clone();
            first_epoch = ck.epochs_done + 1;
            errln!("resuming after epoch {} of {}", ck.epochs_done, h.epochs)?;
        }
        (None, Some(p)) => parameters::read_raw(p, &shapes, net.params_mut())?,
        (None, None) => parameters::he_init(&shapes, net.params_mut(), h.seed),
    }
    net.repack();
    let n = a.limit.unwrap_or(usize::MAX).min(train_blob.len());
    check_classes(&train_blob, n, test_blob.as_ref())?;
    let split = match a.val_fraction {
        Some(f) => Some(catdog::split::stratified(
            train_blob.labels(),
            n,
            f,
            h.seed,
        )?),
        None => None,
    };
    let n_train = split.as_ref().map_or(n, |s| s.train.len());
    if n_train < h.batch {
        let rest = if split.is_some() {
            " (after --val-fraction)"
        } else {
            ""
        };
        return Err(format!(
            "{n_train} training samples{rest} are fewer than one batch of {}",
            h.batch
        ));
    }
    let val = match (&split, &val_blob) {
        (Some(_), _) => Some(checkpoint::Validation::Fraction(
            a.val_fraction.unwrap_or(0.0),
        )),
        (None, Some(b)) => Some(checkpoint::Validation::Blob(checkpoint::BlobId::of(b))),
        (None, None) => None,
    };
    // A resumed run keeps its best epoch, unless --force changed what it was chosen on (the
    // validation source, or the seed that draws the split).
    let kept = resumed
        .as_ref()
        .filter(|ck| ck.hyper.seed == h.seed || a.val.is_some())
        .and_then(|ck| ck.selection);
    let selection = val.map(|val| checkpoint::Selection {
        val,
        tta: a.val_tta,
        save_best: a.save_best,
        best: kept
            .filter(|k| k.val == val && k.tta == a.val_tta && (k.save_best || !a.save_best))
            .and_then(|k| k.best),
    });
    if let Some(s) = &split {
        errln!(
            "validation: {} of {n} training samples held out (--val-fraction {}, stratified, \
             seed {}); training on {}",
            s.val.len(),
            a.val_fraction.unwrap_or(0.0),
            h.seed,
            s.train.len()
        )?;
    }
    let terminal = std::io::stdout().is_terminal();
    let cfg = FitConfig {
        recipe: r,
        log_every: a.log_every.unwrap_or(if terminal { 0 } else { 1 }),
        n_train,
        checkpoint: (!a.no_checkpoint).then(|| a.checkpoint.clone()),
        metrics: a.metrics.clone(),
        plot: a.plot.clone(),
        progress: terminal && std::io::stderr().is_terminal(),
        run: Some(checkpoint::RunRecord {
            limit: a.limit.map(|l| l as u64),
            train: checkpoint::BlobId::of(&train_blob),
            test: test_blob.as_ref().map(checkpoint::BlobId::of),
        }),
        set_aside: a.resume.as_ref() != Some(&a.checkpoint),
        resume_flags: runs::resume_flags(&a),
        best_from: match (&a.resume, selection.and_then(|s| s.best)) {
            (Some(r), Some(_)) if best_files.is_some() && *r != a.checkpoint => {
                Some(fit::BestFiles::beside(r))
            }
            _ => None,
        },
        best: best_files,
    };
    if !a.no_checkpoint {
        errln!("checkpoint: {}", a.checkpoint.display())?;
    }
    Ok(Some(Training {
        a,
        net,
        train_blob,
        test_blob,
        val_blob,
        split,
        selection,
        cfg,
        first_epoch,
        history,
    }))
}

/// The `--val` blob: labeled, the training data's image size, and neither the training nor
/// the test blob (the model is chosen on data it neither trained nor is tested on).
fn open_val(
    p: &Path,
    train: &catdog::blob::Blob,
    test: Option<&catdog::blob::Blob>,
) -> Result<catdog::blob::Blob, String> {
    let v = open_blob(p, "validation", true)?;
    if v.dims() != train.dims() {
        return Err(format!(
            "{} has {:?} images but {} has {:?}: pack both with the same --size",
            p.display(),
            v.dims(),
            train.path().display(),
            train.dims()
        ));
    }
    let id = checkpoint::BlobId::of(&v);
    for (what, other) in [("training", Some(train)), ("test", test)] {
        let Some(other) = other else { continue };
        if id == checkpoint::BlobId::of(other) {
            return Err(format!(
                "--val {}: this is the {what} data ({}); validate on other samples \
                 (--val-fraction F holds some out of the training data)",
                p.display(),
                other.path().display()
            ));
        }
    }
    Ok(v)
}

/// Refuses training samples of one class (the network would learn to answer that class, and
/// the test accuracy could read 1.0): names the missing class. A test set without a class gets
/// a warning (its accuracy says nothing about telling the two apart).
fn check_classes(
    train: &catdog::blob::Blob,
    n: usize,
    test: Option<&catdog::blob::Blob>,
) -> Result<(), String> {
    let names = catdog::blob::CLASS_NAMES;
    let has = |b: &catdog::blob::Blob, n: usize, k: usize| b.labels()[..n].contains(&(k as u8));
    for (k, name) in names.iter().enumerate() {
        if !has(train, n, k) {
            let which = if n < train.len() {
                format!(
                    "the first {n} samples (--limit) of {}",
                    train.path().display()
                )
            } else {
                format!("{} ({n} samples)", train.path().display())
            };
            return Err(format!(
                "{which} hold no {name} (class {k}): a network trained on one class learns \
                 nothing; pack photos of both classes"
            ));
        }
        if let Some(test) = test.filter(|t| !has(t, t.len(), k)) {
            errln!(
                "warning: {}: the test set holds no {name} (class {k}): its accuracy says \
                 nothing about telling cats from dogs",
                test.path().display()
            )?;
        }
    }
    Ok(())
}

/// After the last epoch: `--save` (the best validation epoch's parameters with
/// `--save-best`), the run's summary on stderr, and the original's `Accuracy is:` line (from
/// the last epoch's test pass, or a fresh one; none with `--no-test`).
fn finish_training(t: &mut Training, last: Option<f32>) -> Result<(), String> {
    let best = t.selection.and_then(|s| s.best);
    if let Some(p) = &t.a.save {
        match (&t.cfg.best, best) {
            (Some(b), Some((e, acc))) => {
                let shapes = t.net.shapes().clone();
                let mut params = vec![0.0; shapes.param_count()];
                parameters::read_raw(&b.raw, &shapes, &mut params)?;
                parameters::write_raw(p, &shapes, &params)?;
                let with = t.selection.map_or("", |s| s.tta_note());
                errln!(
                    "saved the best epoch's parameters (epoch {e}, val acc {acc:.4}{with}) to {}",
                    p.display()
                )?;
            }
            _ => {
                parameters::write_raw(p, t.net.shapes(), t.net.params())?;
                errln!("saved parameters to {}", p.display())?;
            }
        }
    }
    errln!("{}", summary(t))?;
    let acc = match (last, &t.test_blob) {
        (Some(acc), _) => acc,
        (None, Some(b)) => report::original_accuracy(&t.net.predict(b), b.labels()),
        (None, None) => return Ok(()),
    };
    outln!("Accuracy is: {}", report::original_decimal(acc as f64))?;
    Ok(())
}

/// The block that ends a training run: the best validation epoch, where its parameters and
/// the last checkpoint are, the metrics and curves, and the commands that use the model.
fn summary(t: &Training) -> String {
    let word = |p: &Path| runs::shell_word(&p.to_string_lossy());
    let h = t.net.hyper();
    let done = t.history.last().map_or(0, |r| r.epoch);
    let secs = t.history.last().map_or(0.0, |r| r.elapsed_s);
    let mut s = format!("run summary: {done} of {} epochs, {secs:.1} s", h.epochs);
    let best = t.selection.and_then(|s| s.best);
    // A model chosen on validation with TTA is meant to be used with it.
    let with = t.selection.map_or("", |s| s.tta_note());
    let tta = if with.is_empty() { "" } else { " --tta" };
    match (best, &t.cfg.best) {
        (Some((e, acc)), Some(b)) => {
            s += &format!(
                "\n  best validation epoch: {e} (val accuracy {acc:.4}{with})\n  its parameters: \
                 {} (checkpoint {})",
                b.raw.display(),
                b.ckpt.display()
            )
        }
        (Some((e, acc)), None) => {
            s += &format!(
                "\n  best validation epoch: {e} (val accuracy {acc:.4}{with}); not kept (add \
                 --save-best to keep it)"
            )
        }
        (None, _) => {
            s += "\n  best validation epoch: none (no validation set: --val-fraction F or --val \
                  PATH chooses one)"
        }
    }
    if let Some(p) = &t.cfg.checkpoint {
        s += &format!("\n  last checkpoint: {} (epoch {done})", p.display());
    }
    if let Some(p) = &t.a.save {
        s += &format!("\n  --save: {}", p.display());
    }
    for (what, p) in [("metrics", &t.cfg.metrics), ("curves", &t.cfg.plot)] {
        if let Some(p) = p {
            s += &format!("\n  {what}: {}", p.display());
        }
    }
    // The model the commands use: the best epoch's checkpoint, else the last one, else --save
    // (a parameters.raw file, which needs the network's shapes when they are not the default).
    let model = match (&t.cfg.best, &t.cfg.checkpoint, &t.a.save) {
        (Some(b), _, _) if best.is_some() => Some(word(&b.ckpt)),
        (_, Some(c), _) => Some(word(c)),
        (_, None, Some(p)) => {
            let d = catdog::config::Hyper::default();
            let mut m = word(p);
            if h.widths != d.widths || h.fc1 != d.fc1 {
                let [a, b, c] = h.widths;
                m += &format!(" --widths {a},{b},{c} --fc1 {}", h.fc1);
            }
            Some(m)
        }
        _ => None,
    };
    match model {
        Some(m) => {
            let data = t.a.test_path().map_or("BLOB".into(), word);
            s += &format!(
                "\n  evaluate: ./model eval --params {m} --data {data}{tta}\n  predict:  ./model \
                 predict --params {m}{tta} PHOTO_OR_FOLDER..."
            );
        }
        None => s += "\n  no model was kept (--no-checkpoint and no --save)",
    }
    s
}

/// The first run on a fresh clone: when neither default blob exists, `tools/pack --fetch
/// petimages -o data` downloads and packs Microsoft's PetImages (the packer does it: the trainer
/// never decodes an image). A failing packer has printed its own error line.
fn fetch_if_no_data(a: &TrainArgs) -> Result<(), String> {
    let defaults = a.train == Path::new("data/train.bin") && a.test == Path::new("data/test.bin");
    let given = a.dry_run || a.resume.is_some() || a.no_test;
    if !defaults || given || a.train.exists() || a.test.exists() {
        return Ok(());
    }
    errln!(
        "data/train.bin and data/test.bin are missing: fetching Microsoft's PetImages photos \
         (about 787 MB) and packing them with `tools/pack --fetch petimages -o data`"
    )?;
    match packer_cmd::fetch_default_data(Path::new("data")) {
        Ok(()) => Ok(()),
        Err(Some(msg)) => Err(msg),
        Err(None) => std::process::exit(2),
    }
}

/// A network with the parameters of `file`: a checkpoint (its own shapes) or a parameters.raw
/// file (shapes from the flags).
fn load_model(
    file: &Path,
    arch: &ArchArgs,
    image: usize,
    batch: usize,
) -> Result<Box<dyn Network>, String> {
    let flags = hyper(arch, image, batch)?;
    let mut net = match load_checkpoint(file, &flags, "the data has")? {
        Some((h, params)) => {
            let mut net = make_net(&h, arch, false)?;
            net.params_mut().copy_from_slice(&params);
            net
        }
        None => {
            // The network first: one the machine cannot hold is refused before any read.
            let mut net = make_net(&flags, arch, false)?;
            let shapes = net.shapes().clone();
            parameters::read_raw(file, &shapes, net.params_mut())?;
            net
        }
    };
    net.repack();
    Ok(net)
}

/// The hyperparameters and parameters of `file` when it is a checkpoint (its own shapes, with
/// `flags`' batch and threads; its image size must be `flags.image`, which `image_is` names in
/// the message if not); `None` when it is not one (a parameters.raw file, or missing).
fn load_checkpoint(
    file: &Path,
    flags: &Hyper,
    image_is: &str,
) -> Result<Option<(Hyper, Vec<f32>)>, String> {
    let mut magic = [0u8; 8];
    // A FIFO or device is refused here, without blocking; a missing file is reported by the
    // reader of parameters.raw.
    let is_ck = match guard::open_regular(file, "the model (--params)") {
        Ok(mut f) => {
            let read = std::io::Read::read_exact(&mut f, &mut magic).is_ok();
            if read && &magic == b"CATDOGDS" {
                return Err(format!(
                    "{}: this is a dataset blob, not a model: --params takes a checkpoint or a \
                     parameters.raw file (give the blob as the data)",
                    file.display()
                ));
            }
            read && magic == checkpoint::MAGIC
        }
        Err(e) if file.exists() => return Err(e),
        Err(_) => false,
    };
    if !is_ck {
        return Ok(None);
    }
    let ck = checkpoint::load(file)?;
    let h = Hyper {
        batch: flags.batch,
        threads: flags.threads,
        ..ck.hyper.clone()
    };
    if h.image != flags.image {
        return Err(format!(
            "{}: the model takes {}x{} images but {image_is} {}x{}",
            file.display(),
            h.image,
            h.image,
            flags.image,
            flags.image
        ));
    }
    Ok(Some((h, ck.params)))
}

/// The parameters in `file`, a checkpoint or a parameters.raw file of the network `flags`
/// describes (as [`load_model`] reads them), without building a network.
fn load_params(file: &Path, flags: &Hyper, image_is: &str) -> Result<(Hyper, Vec<f32>), String> {
    if let Some(loaded) = load_checkpoint(file, flags, image_is)? {
        return Ok(loaded);
    }
    let shapes = flags.shapes()?;
    // Room for the parameters only once the file has their size: flags for a network too large
    // to hold get read_raw's size error, not an allocation failure.
    let n = shapes.param_count();
    let fits = std::fs::metadata(file).is_ok_and(|m| m.len() == n as u64 * 4);
    let mut params = vec![0.0; if fits { n } else { 0 }];
    parameters::read_raw(file, &shapes, &mut params)?;
    Ok((flags.clone(), params))
}

/// `model export`: the model of `--params` as ONNX and/or safetensors.
fn export_cmd(mut a: ExportArgs) -> Result<(), String> {
    a.params = runs::resolve_params(&a.params, Path::new(runs::RUNS_DIR))?;
    let outputs: Vec<(&Path, &str)> = [(&a.onnx, "--onnx"), (&a.safetensors, "--safetensors")]
        .into_iter()
        .filter_map(|(p, flag)| p.as_deref().map(|p| (p, flag)))
        .collect();
    guard::check_outputs(&[(a.params.as_path(), "--params")], &outputs)?;
    let image = a.image.unwrap_or_else(|| model_image_size(&a.params));
    let flags = a.hyper(image)?;
    let (h, params) = load_params(&a.params, &flags, "--image is")?;
    catdog::export::write(
        &h.shapes()?,
        &params,
        a.onnx.as_deref(),
        a.safetensors.as_deref(),
    )
}

/// Refuses a `--plot` name that is neither `.png` nor `.svg`.
fn check_plot_name(p: &Path) -> Result<(), String> {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "png" && ext != "svg" {
        return Err(format!(
            "--plot {}: the file name must end in .png or .svg",
            p.display()
        ));
    }
    Ok(())
}

/// P(dog) of every sample of `data`: as it is, or with `tta` the mean over each image and its
/// left-right mirror.
fn predict_probs(
    net: &mut dyn Network,
    data: &dyn catdog::dataset::Dataset,
    tta: bool,
) -> Result<Vec<f32>, String> {
    if tta {
        catdog::infer::predict_tta(net, data)
    } else {
        Ok(net.predict(data))
    }
}

fn eval_cmd(mut a: EvalArgs) -> Result<(), String> {
    a.params = runs::resolve_params(&a.params, Path::new(runs::RUNS_DIR))?;
    if a.errors.is_some() && a.errors_count == 0 {
        return Err(
            "--errors-count 0 would write a contact sheet of no images: give at least 1, \
                    or leave out --errors"
                .into(),
        );
    }
    if let Some(out) = &a.errors {
        let inputs = [
            (a.data.as_path(), "--data"),
            (a.params.as_path(), "--params"),
        ];
        guard::check_outputs(&inputs, &[(out.as_path(), "--errors")])?;
        guard::clean_stale_beside(&[out.as_path()], "")?;
    }
    if let Some(p) = &a.plot {
        check_plot_name(p)?;
        let inputs = [
            (a.data.as_path(), "--data"),
            (a.params.as_path(), "--params"),
        ];
        let mut outputs = vec![(p.as_path(), "--plot")];
        outputs.extend(a.errors.as_deref().map(|e| (e, "--errors")));
        guard::check_outputs(&inputs, &outputs)?;
        guard::clean_stale_beside(&[p.as_path()], "")?;
    }
    let blob = open_blob(&a.data, "evaluation", true)?;
    let mut net = load_model(&a.params, &a.arch, blob.dims().0, a.batch_size)?;
    let probs = predict_probs(net.as_mut(), &blob, a.tta)?;
    if a.tta {
        outln!(
            "test-time augmentation (--tta): P(dog) is the mean over each image and its \
             left-right mirror"
        )?;
    }
    let c = Confusion::new(&probs, blob.labels());
    out!("{}", c.render())?;
    let cal = catdog::report::Calibration::new(&probs, blob.labels());
    out!("{}", cal.render())?;
    if let Some(p) = &a.plot {
        let name = |p: &Path| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        let title = format!(
            "reliability: {} on {}{}",
            name(&a.params),
            name(&a.data),
            if a.tta { " (TTA)" } else { "" }
        );
        catdog::plot::write_reliability(p, &cal, &title)?;
        errln!("wrote {}", p.display())?;
    }
    if let Some(out) = &a.errors {
        // The worst mistakes: wrong side of 0.5, farthest from the true label first.
        let mut wrong: Vec<usize> = (0..blob.len())
            .filter(|&i| (probs[i] > 0.5) != (blob.labels()[i] == 1))
            .collect();
        wrong.sort_by(|&i, &j| {
            let e = |k: usize| (probs[k] - blob.labels()[k] as f32).abs();
            e(j).total_cmp(&e(i)).then(i.cmp(&j))
        });
        wrong.truncate(a.errors_count);
        if wrong.is_empty() {
            errln!("no misclassified images: {} not written", out.display())?;
        } else {
            let (hh, ww, _) = blob.dims();
            let names = blob.class_names();
            let tiles: Vec<Tile> = wrong
                .iter()
                .map(|&i| Tile {
                    pixels: blob.image(i),
                    h: hh,
                    w: ww,
                    caption: vec![
                        blob.source(i).to_string(),
                        format!(
                            "P(dog)={:.3} true: {}",
                            probs[i],
                            names
                                .get(blob.labels()[i] as usize)
                                .map(String::as_str)
                                .unwrap_or("?")
                        ),
                    ],
                })
                .collect();
            let title = format!(
                "{} worst misclassified of {} ({})",
                tiles.len(),
                blob.len(),
                a.data.display()
            );
            contact_sheet::write_contact_sheet(out, &tiles, 6, &title)?;
            errln!("wrote {}", out.display())?;
        }
    }
    outln!(
        "Accuracy is: {}",
        report::original_decimal(report::original_accuracy(&probs, blob.labels()) as f64)
    )?;
    Ok(())
}

/// The prefix of `predict`'s temporary folders (`catdog-predict-PID` in the temporary folder).
const PREDICT_TMP: &str = "catdog-predict-";

/// Removes the temporary folders of `predict` runs whose process is gone (killed while packing).
fn clean_stale_predict(tmp_root: &Path) {
    for e in std::fs::read_dir(tmp_root).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREDICT_TMP))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !guard::process_alive(pid)
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn predict_cmd(mut a: PredictArgs) -> Result<(), String> {
    a.params = runs::resolve_params(&a.params, Path::new(runs::RUNS_DIR))?;
    if a.tta {
        errln!(
            "test-time augmentation (--tta): P(dog) is the mean over each photo and its \
             left-right mirror"
        )?;
    }
    clean_stale_predict(&std::env::temp_dir());
    let tmp = std::env::temp_dir().join(format!("{PREDICT_TMP}{}", std::process::id()));
    guard::on_interrupt_remove_dir(&tmp);
    let r = predict_inputs(&a, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

/// True for a packed blob (by its magic bytes, or a `.bin` name, so a damaged blob is reported
/// as one); anything else is a photo or a folder of photos.
fn is_blob(p: &Path) -> bool {
    let mut magic = [0u8; 8];
    let by_magic = catdog::guard::open_regular(p, "a prediction input")
        .ok()
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic).ok())
        .is_some_and(|_| &magic == b"CATDOGDS");
    by_magic || (p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("bin")))
}

/// Predicts every input in order: blobs as they are, runs of photos and folders packed by the
/// packer (`tools/pack photos`) into a temporary blob at the model's image size.
fn predict_inputs(a: &PredictArgs, tmp: &Path) -> Result<(), String> {
    let mut groups: Vec<(bool, Vec<std::path::PathBuf>)> = Vec::new();
    for p in &a.inputs {
        if let Err(e) = std::fs::metadata(p) {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => format!("{}: no such file or folder", p.display()),
                // A symbolic link loop, a folder without permission: not "missing".
                _ => format!("{}: cannot open: {e}", p.display()),
            });
        }
        if !p.is_dir() {
            // A FIFO or a device is refused at once (a read would block or never end).
            catdog::guard::open_regular(p, "a prediction input")?;
        }
        let blob = is_blob(p);
        match groups.last_mut() {
            Some((false, v)) if !blob => v.push(p.clone()),
            _ => groups.push((blob, vec![p.clone()])),
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (k, (blob, paths)) in groups.iter().enumerate() {
        let path = if *blob {
            paths[0].clone()
        } else {
            std::fs::create_dir_all(tmp)
                .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
            let p = tmp.join(format!("photos-{k}.bin"));
            // An interrupt removes the blob and its temporary file (then the empty folder).
            guard::on_interrupt_remove_file(&p);
            guard::on_interrupt_remove_file(&guard::tmp_path(&p)?);
            let size = model_image_size(&a.params);
            packer_cmd::pack_photos(paths, &p, size)?;
            p
        };
        let data = open_blob(&path, "prediction", false)?;
        let mut net = load_model(&a.params, &a.arch, data.dims().0, a.batch_size)?;
        let probs = predict_probs(net.as_mut(), &data, a.tta)?;
        for (i, p) in probs.iter().enumerate() {
            let class = if *p > 0.5 { "dog" } else { "cat" };
            // A closed pipe (e.g. `| head`) stops quietly (exit 141); any other failure is an
            // error.
            std::io::Write::write_fmt(
                &mut out,
                format_args!("{}\t{p:.6}\t{class}\n", data.source(i)),
            )
            .map_err(|e| catdog::guard::stream_error(false, &e))?;
        }
    }
    std::io::Write::flush(&mut out).map_err(|e| catdog::guard::stream_error(false, &e))
}

/// Samples `bench` trains on (one warm-up batch, then `batches`), refused before anything is
/// allocated when the count overflows or the synthetic images would not fit in memory.
fn bench_samples(batches: usize, batch: usize, image: usize) -> Result<usize, String> {
    const MAX_BATCHES: usize = 1_000_000;
    if !(1..=MAX_BATCHES).contains(&batches) {
        return Err(format!(
            "--batches {batches} is not usable: it must be between 1 and {MAX_BATCHES}"
        ));
    }
    let n = (batches + 1) * batch; // <= 1e6 * 4097: no overflow
    let bytes = (n as u128) * (image as u128) * (image as u128) * 3;
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let l = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            l.split_whitespace().nth(1)?.parse::<u128>().ok()
        })
        .map_or(u128::MAX, |kb| kb * 1024);
    if bytes > available / 2 {
        return Err(format!(
            "--batches {batches}: {n} synthetic {image}x{image} images need {:.1} GiB, more than \
             half the memory available ({:.1} GiB); use fewer batches",
            bytes as f64 / (1u64 << 30) as f64,
            available as f64 / (1u64 << 30) as f64
        ));
    }
    Ok(n)
}

/// The image size a model takes: a checkpoint's own, else 128 (a parameters.raw file).
fn model_image_size(params: &Path) -> usize {
    checkpoint::load(params).map_or(128, |ck| ck.hyper.image)
}

fn bench_cmd(a: BenchArgs) -> Result<(), String> {
    let mut h = hyper(&a.arch, a.image, a.batch_size)?;
    let shapes = h.shapes()?;
    if a.profile && a.arch.kernels()? == Kernels::Original {
        return Err("--profile times the fast tier's phases; the original tier has none (drop --profile or use --kernels fast)".into());
    }
    if !(0.0..=3600.0).contains(&a.min_seconds) {
        return Err(format!(
            "--min-seconds {} is not usable: it must be between 0 and 3600",
            a.min_seconds
        ));
    }
    let n = bench_samples(a.batches, h.batch, a.image)?;
    h.epochs = 1;
    let mut net = make_net(&h, &a.arch, false)?;
    parameters::he_init(&shapes, net.params_mut(), 1);
    net.repack();
    let data = Synthetic::new(n, a.image, 7);
    let opts = EpochOptions::plain(0.01);
    let order: Vec<u32> = (0..n as u32).collect();
    // Warm-up: one batch (page faults, caches, frequency).
    net.run_epoch(&Epoch::new(&data, &order[..h.batch], 1, &opts))?;
    // The timed batches, again until --min-seconds have passed.
    let (mut samples, mut seconds) = (0, 0.0);
    while samples == 0 || seconds < a.min_seconds {
        let st = net.run_epoch(&Epoch::new(&data, &order[h.batch..], 1, &opts))?;
        (samples, seconds) = (samples + st.samples, seconds + st.seconds);
    }
    let train_rate = samples as f64 / seconds;
    if a.profile {
        catdog::profile::enable(true);
        let st = net.run_epoch(&Epoch::new(&data, &order[h.batch..], 1, &opts))?;
        out!("{}", catdog::profile::report(st.steps))?;
        catdog::profile::enable(false);
    }
    // Inference in its own batches (a network sized for them), on the trained parameters.
    let hi = Hyper {
        batch: a.infer_batch,
        ..h.clone()
    };
    hi.shapes()?;
    let mut infer_net = make_net(&hi, &a.arch, false)?;
    infer_net.params_mut().copy_from_slice(net.params());
    infer_net.repack();
    let _ = infer_net.predict(&data);
    let (t, mut inferred) = (Instant::now(), 0);
    while inferred == 0 || t.elapsed().as_secs_f64() < a.min_seconds {
        inferred += infer_net.predict(&data).len();
    }
    let infer_rate = inferred as f64 / t.elapsed().as_secs_f64();
    let gflop = 2.0 * shapes.train_macs() as f64 / 1e9;
    outln!(
        "config: image {}, widths {:?}, fc1 {}, batch {} (inference {}), {}",
        h.image,
        h.widths,
        h.fc1,
        h.batch,
        hi.batch,
        net.describe()
    )?;
    // Counted as the direct convolution would (Winograd layers do fewer multiplies, so on
    // them this is an effective rate and can pass the FMA peak).
    outln!(
        "train: {:.1} GFLOP/s effective (direct-convolution FLOP count)",
        train_rate * gflop
    )?;
    outln!("train: {train_rate:.1} samples/s")?;
    outln!("infer: {infer_rate:.1} samples/s")?;
    Ok(())
}

fn main() -> ExitCode {
    // A bug must not greet the user with a backtrace: one line, and where to report it.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error{at}: {msg} (this is a bug in catdog; please report it)"
        );
    }));
    let cli = match catdog::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let command = cli
        .command
        .or_else(|| Cli::parse_from(["model", "train"]).command)
        .expect("`model train` parses as the train command");
    let arch = match &command {
        Command::Train(a) => Some(&a.arch),
        Command::Eval(a) => Some(&a.arch),
        Command::Predict(a) => Some(&a.arch),
        Command::Bench(a) => Some(&a.arch),
        Command::Export(_) | Command::Import(_) => None,
    };
    // Which kernels run is decided once, and said once when it is not the fast kernels.
    if let Some(Err(e)) = arch.map(ArchArgs::announce_kernels) {
        return catdog::guard::exit_code(Err(e), "");
    }
    let result = match command {
        // Train: set up, run the epochs (fit -> Network::run_epoch -> step -> layers), report.
        Command::Train(a) => {
            let r = prepare_training(a).and_then(|t| match t {
                None => Ok(()),
                Some(mut t) => {
                    let split = t.split.as_ref().map(|s| {
                        let base: &dyn catdog::dataset::Dataset = &t.train_blob;
                        (
                            catdog::split::Subset::new(base, s.train.clone()),
                            catdog::split::Subset::new(base, s.val.clone()),
                        )
                    });
                    let sets = fit::Sets {
                        train: match &split {
                            Some((train, _)) => train,
                            None => &t.train_blob,
                        },
                        val: match (&split, &t.val_blob) {
                            (Some((_, val)), _) => Some(val),
                            (None, Some(v)) => Some(v),
                            (None, None) => None,
                        },
                        test: t
                            .test_blob
                            .as_ref()
                            .map(|b| b as &dyn catdog::dataset::Dataset),
                    };
                    let (cfg, first) = (&t.cfg, t.first_epoch);
                    let net = t.net.as_mut();
                    let last = fit::fit(net, &sets, cfg, first, &mut t.history, &mut t.selection)?;
                    drop(split);
                    finish_training(&mut t, last)
                }
            });
            if r.is_err() {
                // A run that stopped before its first checkpoint leaves no empty run folder.
                runs::release_run_dir();
            }
            r
        }
        Command::Eval(a) => eval_cmd(a),
        Command::Predict(a) => predict_cmd(a),
        Command::Bench(a) => bench_cmd(a),
        Command::Export(a) => export_cmd(a),
        Command::Import(a) => catdog::export::import(&a.safetensors, &a.save),
    };
    catdog::guard::exit_code(result, "")
}
