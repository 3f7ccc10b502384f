//! The command line of `model` (clap), kept in the library so that tests and fuzz targets can
//! parse and check arguments exactly as the binary does. `main.rs` only dispatches.

use crate::augment::MIN_CROP_AREA_PCT;
use crate::config::Kernels;
use crate::config::{Hyper, Recipe, Schedule};
use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "model",
    version,
    about = "Train and run a cat-vs-dog CNN on the CPU (asm! AVX-512 kernels)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per process: the size of the train variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Train on a packed blob, then report test accuracy (the default command).
    Train(TrainArgs),
    /// Accuracy, confusion matrix, precision and recall of a model on a packed blob.
    Eval(EvalArgs),
    /// P(dog) for photos, folders of photos or packed blobs: `path<TAB>P(dog)<TAB>cat|dog`.
    #[command(after_help = PREDICT_EXAMPLES)]
    Predict(PredictArgs),
    /// Training and inference throughput on synthetic data.
    Bench(BenchArgs),
    /// The trained network as ONNX (for ONNX Runtime) and/or safetensors (for PyTorch).
    Export(ExportArgs),
    /// A network from a safetensors file in PyTorch's layout (as `export` writes) to
    /// parameters.raw, for --init or --params.
    Import(ImportArgs),
}

/// Network shape flags (the image size comes from the data).
#[derive(Args, Clone)]
pub struct ArchArgs {
    /// Output channels of conv1,conv2,conv3 (multiples of 16).
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', default_values_t = [32, 64, 128])]
    pub widths: Vec<usize>,
    /// Neurons of fc1 (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    pub fc1: usize,
    /// Worker threads (default: all cores). Results are bitwise the same for any count.
    /// `--kernels original` always runs on one thread.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Which kernels run: `fast` (ours: register-blocked, Winograd, multi-threaded asm!;
    /// AVX-512), `original` (the assembly original's own routines, bit for bit, one thread,
    /// plain SGD only; AVX-512), `portable` (ours for CPUs without AVX-512: plain Rust and a
    /// GEMM crate, AVX2 where there is one) or `reference` (the scalar plain-Rust oracle, slow).
    /// Default: `CATDOG_KERNELS` if set, else `fast` where the CPU has AVX-512, else `portable`.
    #[arg(long, value_name = "KERNELS", value_parser = kernels_parser())]
    pub kernels: Option<Kernels>,
    /// The fast tier's conv algorithm: `auto` (Winograd F(4x4) where the layer's sides are
    /// multiples of 4, else F(2x2) where they are even; a layer with 1 to 3 input channels,
    /// conv1, as Winograd F(4,3) along rows where its width is a multiple of 4; else direct),
    /// `winograd2` (F(2x2) where it applies, else direct: less rounding error, slower) or
    /// `direct` (no Winograd: the least rounding error, slowest).
    #[arg(long, value_enum, default_value = "auto")]
    pub conv: ConvName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvName {
    Auto,
    Winograd2,
    Direct,
}

impl ConvName {
    pub fn choice(self) -> crate::layers::conv::ConvChoice {
        use crate::layers::conv::ConvChoice;
        match self {
            ConvName::Auto => ConvChoice::Auto,
            ConvName::Winograd2 => ConvChoice::Winograd2,
            ConvName::Direct => ConvChoice::Direct,
        }
    }
}

/// `--kernels`' values: the names of [`Kernels`], listed in `--help`.
fn kernels_parser() -> impl TypedValueParser<Value = Kernels> {
    let names: Vec<&'static str> = Kernels::ALL.iter().map(|k| k.name()).collect();
    clap::builder::PossibleValuesParser::new(names).map(|s| s.parse::<Kernels>().unwrap())
}

impl ArchArgs {
    /// The kernels to run: `--kernels`, else `CATDOG_KERNELS`, else this CPU's default.
    pub fn kernels(&self) -> Result<Kernels, String> {
        Kernels::resolve(self.kernels).map(|(k, _)| k)
    }

    /// [`ArchArgs::kernels`], printing the `note:` line for a default that is not `fast` (once
    /// per command: `main` calls this before running it).
    pub fn announce_kernels(&self) -> Result<Kernels, String> {
        let (k, note) = Kernels::resolve(self.kernels)?;
        if let Some(line) = note {
            crate::errln!("{line}")?;
        }
        Ok(k)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RecipeName {
    /// The original: plain SGD, constant learning rate, no augmentation; 10 epochs.
    Faithful,
    /// Flips, random crops and colour jitter, label smoothing 0.1, momentum 0.9, weight decay
    /// 5e-4, dropout 0.2, 2 warm-up epochs then a cosine schedule; 60 epochs.
    Improved,
}

impl RecipeName {
    /// The epochs a run of this recipe takes without `--epochs`.
    pub fn epochs(self) -> usize {
        match self {
            RecipeName::Faithful => Recipe::FAITHFUL_EPOCHS,
            RecipeName::Improved => Recipe::IMPROVED_EPOCHS,
        }
    }
}

/// `--augment`'s values.
#[derive(Clone, Copy, ValueEnum)]
pub enum AugmentName {
    /// No augmentation.
    None,
    /// Left-right mirrors only.
    Flips,
    /// Mirrors, random resized crops, brightness, contrast and saturation jitter.
    Full,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleName {
    Constant,
    Cosine,
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Training blob made by tools/pack.
    #[arg(long, default_value = "data/train.bin")]
    pub train: PathBuf,
    /// Test blob made by tools/pack.
    #[arg(long, default_value = "data/test.bin")]
    pub test: PathBuf,
    /// Train without a test blob (e.g. every labelled photo is training or validation data):
    /// no test pass after each epoch and no final `Accuracy is` line.
    #[arg(long, conflicts_with = "test")]
    pub no_test: bool,
    /// Epochs in all (default: the recipe's, faithful 10, improved 60).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Seed for initialisation, shuffling, flips and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Start from this parameters.raw file (the original's format) instead of He-normal init.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Write the trained parameters here, in the original's parameters.raw format: the last
    /// epoch's, or with --save-best the best validation epoch's.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Hold out this fraction of the training data as a validation set (stratified by class,
    /// seeded by --seed), evaluated after every epoch; the epochs train on the rest.
    #[arg(long, value_name = "F", conflicts_with = "val")]
    pub val_fraction: Option<f64>,
    /// A validation blob made by tools/pack, evaluated after every epoch.
    #[arg(long, value_name = "PATH")]
    pub val: Option<PathBuf>,
    /// Keep the best validation epoch (needs --val-fraction or --val): after each epoch whose
    /// validation accuracy beats every earlier one, write its parameters (best.raw) and
    /// checkpoint (best.ckpt) beside the checkpoint. Never looks at --test.
    #[arg(long)]
    pub save_best: bool,
    /// Evaluate the validation set with test-time augmentation (the mean over each photo and
    /// its mirror, as `eval --tta`): the logged validation accuracy and loss, and the epoch
    /// --save-best keeps, are those of the model used with --tta. Needs --val-fraction or --val.
    #[arg(long)]
    pub val_tta: bool,
    /// Visit samples in file order every epoch, as the original does.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Use only the first N training samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the per-batch `Epoch: E, Step: S, Loss: L` line every N steps (0: never). Default:
    /// every step when stdout is not a terminal; on a terminal a progress bar instead.
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Training recipe; the flags below override single parts of it.
    #[arg(long, value_enum, default_value = "faithful")]
    pub recipe: RecipeName,
    /// Mirror samples left-right at random (per epoch and sample).
    #[arg(long)]
    pub flip: bool,
    /// Training-time augmentation: `none`, `flips` (left-right mirrors) or `full` (mirrors,
    /// random resized crops of 50-100% of the area (`--crop-area`) at aspect 3/4 to 4/3, and
    /// brightness, contrast and saturation jitter of +-30%). Evaluation never augments.
    #[arg(long, value_enum)]
    pub augment: Option<AugmentName>,
    /// With `--augment full`: each random crop covers PCT to 100% of the image's area (an
    /// integer percentage, 5 to 100).
    #[arg(long, value_name = "PCT")]
    pub crop_area: Option<u8>,
    /// Label smoothing: train towards y(1-E) + E/2 instead of 0 and 1 (the training loss
    /// reported is then the smoothed one; the test loss is always plain).
    #[arg(long, value_name = "E")]
    pub label_smoothing: Option<f32>,
    /// Epochs of linear learning-rate warm-up before the schedule (at most --epochs - 1).
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// SGD momentum (0: plain SGD).
    #[arg(long)]
    pub momentum: Option<f32>,
    /// L2 weight decay.
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Dropout probability on the inputs of fc1 and fc2.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Learning-rate schedule over the epochs.
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleName>,
    /// Checkpoint written after every epoch (parameters, optimizer state, progress). Default: a
    /// new run folder, data/runs/N/checkpoint.ckpt (with --resume: the resumed file). An earlier
    /// run's file under this name is moved aside, never overwritten.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoint_flag: Option<PathBuf>,
    /// The checkpoint this run writes (resolved from --checkpoint and --resume).
    #[arg(skip)]
    pub checkpoint: PathBuf,
    /// Do not write checkpoints.
    #[arg(long)]
    pub no_checkpoint: bool,
    /// Continue the run saved in this checkpoint (or `last`: the newest under data/runs), up to
    /// --epochs epochs in all. Flags that differ from the checkpoint's run are refused.
    #[arg(long, value_name = "FILE|last")]
    pub resume: Option<PathBuf>,
    /// With --resume: continue even though flags or data differ from the checkpoint's run (the
    /// flags given take effect).
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Per-epoch loss and accuracy as CSV. Default in a run folder: metrics.csv there.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Training curves as PNG or SVG (by extension), redrawn after every epoch. Default in a
    /// run folder: curves.png there.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print the memory plan for the data's image size and exit without training.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub arch: ArchArgs,
    /// Ids of the flags given on the command line (filled by [`parse_from`]).
    #[arg(skip)]
    pub given: Vec<String>,
}

impl TrainArgs {
    /// The test blob, `None` with `--no-test`.
    pub fn test_path(&self) -> Option<&std::path::Path> {
        (!self.no_test).then_some(self.test.as_path())
    }
}

#[derive(Args)]
pub struct EvalArgs {
    /// Model: a parameters.raw file or a checkpoint; `last`: the newest run's checkpoint;
    /// `best`: its best validation epoch (--save-best).
    #[arg(long, value_name = "FILE|last|best")]
    pub params: PathBuf,
    /// Packed blob to evaluate on.
    #[arg(long, default_value = "data/test.bin")]
    pub data: PathBuf,
    /// Write a contact sheet of the worst misclassified images (PNG).
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// How many images the contact sheet shows.
    #[arg(long, default_value_t = 24)]
    pub errors_count: usize,
    /// Test-time augmentation: P(dog) averaged over each image and its left-right mirror.
    #[arg(long)]
    pub tta: bool,
    /// A reliability diagram (PNG or SVG, by extension): accuracy against confidence in the
    /// 15 bins of the expected calibration error.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Samples per forward pass: fc1's weights (16 MiB in the default network) are read once
    /// per batch, so inference runs in larger batches than training.
    #[arg(long, default_value_t = INFER_BATCH)]
    pub batch_size: usize,
    #[command(flatten)]
    pub arch: ArchArgs,
}

#[derive(Args)]
pub struct PredictArgs {
    /// Model: a parameters.raw file or a checkpoint; `last`: the newest run's checkpoint;
    /// `best`: its best validation epoch (--save-best).
    #[arg(long, value_name = "FILE|last|best")]
    pub params: PathBuf,
    /// Photos (JPEG, PNG, ...), folders of photos, or packed blobs (.bin).
    #[arg(required = true, value_name = "PHOTO|FOLDER|BLOB")]
    pub inputs: Vec<PathBuf>,
    /// Test-time augmentation: P(dog) averaged over each image and its left-right mirror.
    #[arg(long)]
    pub tta: bool,
    /// Samples per forward pass: fc1's weights (16 MiB in the default network) are read once
    /// per batch, so inference runs in larger batches than training.
    #[arg(long, default_value_t = INFER_BATCH)]
    pub batch_size: usize,
    #[command(flatten)]
    pub arch: ArchArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("format").required(true).multiple(true).args(["onnx", "safetensors"])))]
pub struct ExportArgs {
    /// Model: a parameters.raw file or a checkpoint; `last`: the newest run's checkpoint;
    /// `best`: its best validation epoch (--save-best).
    #[arg(long, value_name = "FILE|last|best")]
    pub params: PathBuf,
    /// Write an ONNX graph here: input `image` float32 [N, 3, S, S] (RGB, byte / 255), output
    /// `p_dog` float32 [N, 1].
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,
    /// Write the tensors here in PyTorch's names and layouts (conv1.weight, ..., fc2.bias).
    #[arg(long, value_name = "FILE")]
    pub safetensors: Option<PathBuf>,
    /// Output channels of conv1,conv2,conv3, for a parameters.raw file (a checkpoint knows its
    /// own).
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', default_values_t = [32, 64, 128])]
    pub widths: Vec<usize>,
    /// Neurons of fc1, for a parameters.raw file.
    #[arg(long, default_value_t = 128)]
    pub fc1: usize,
    /// Side of the square images the network takes, for a parameters.raw file (default: a
    /// checkpoint's own, else 128).
    #[arg(long, value_name = "S")]
    pub image: Option<usize>,
}

impl ExportArgs {
    /// The network of a parameters.raw file, from the flags, for `image` x `image` images.
    pub fn hyper(&self, image: usize) -> Result<Hyper, String> {
        let Ok(widths) = <[usize; 3]>::try_from(self.widths.as_slice()) else {
            return Err(format!(
                "--widths takes three numbers (conv1,conv2,conv3), got {}",
                self.widths.len()
            ));
        };
        Ok(Hyper {
            image,
            widths,
            fc1: self.fc1,
            batch: 1,
            ..Hyper::default()
        })
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// A safetensors file: conv1..3 and fc1, fc2 weights and biases, float32, PyTorch layouts.
    #[arg(long, value_name = "FILE")]
    pub safetensors: PathBuf,
    /// Write the network here, in the original's parameters.raw format.
    #[arg(long, value_name = "FILE")]
    pub save: PathBuf,
}

/// The default batch of `eval`, `predict` and `bench`'s inference timing.
pub const INFER_BATCH: usize = 64;

#[derive(Args)]
pub struct BenchArgs {
    /// Training batches to time (after one warm-up batch).
    #[arg(long, default_value_t = 12)]
    pub batches: usize,
    #[arg(long, default_value_t = 128)]
    pub image: usize,
    /// Samples per training step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Samples per forward pass of the inference timing (as `eval` and `predict`).
    #[arg(long, default_value_t = INFER_BATCH)]
    pub infer_batch: usize,
    /// Also print a per-layer time breakdown of a training step.
    #[arg(long)]
    pub profile: bool,
    /// Time each figure over at least this many seconds: training repeats its batches and
    /// inference its pass over the images until then, and each rate is over the whole span (as
    /// benches/vs_engines.sh times the other engines). 0: one pass each.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub min_seconds: f64,
    #[command(flatten)]
    pub arch: ArchArgs,
}

/// The examples `model predict --help` shows (README.md shows the same lines).
pub const PREDICT_EXAMPLES: &str = "Examples:\n  \
    ./model predict --params data/runs/1/checkpoint.ckpt photo.jpg ~/Pictures/pets/\n  \
    tools/pack ~/Pictures/pets -o data/mine.bin && ./model predict --params trained.raw data/mine.bin";

/// Parses `model`'s arguments as the binary does. `model` alone or followed by a flag is
/// `model train ...` (so `model --epochs 1` works); for `train`, records which flags were given
/// on the command line (`TrainArgs::given`), so `--resume` can tell a flag from its default.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut v: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let implicit_train = match v.get(1).map(|a| a.to_string_lossy()) {
        None => true,
        Some(a) => a.starts_with('-') && !matches!(&*a, "-h" | "--help" | "-V" | "--version"),
    };
    if implicit_train {
        v.insert(1.min(v.len()), "train".into());
    }
    let m = Cli::command().try_get_matches_from(v)?;
    let mut cli = Cli::from_arg_matches(&m)?;
    if let (Some(Command::Train(a)), Some(("train", sm))) = (&mut cli.command, m.subcommand()) {
        a.given = sm
            .ids()
            .filter(|id| sm.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.to_string())
            .collect();
    }
    Ok(cli)
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn hyper(arch: &ArchArgs, image: usize, batch: usize) -> Result<Hyper, String> {
    if arch.widths.len() != 3 {
        return Err(format!(
            "--widths takes three numbers (conv1,conv2,conv3), got {}",
            arch.widths.len()
        ));
    }
    Ok(Hyper {
        image,
        widths: [arch.widths[0], arch.widths[1], arch.widths[2]],
        fc1: arch.fc1,
        batch,
        threads: arch.threads.unwrap_or_else(default_threads),
        ..Hyper::default()
    })
}

/// `Err` naming `flag` unless `0 <= v < end`.
fn fraction(flag: &str, v: f32, end: f32) -> Result<(), String> {
    if !(0.0..end).contains(&v) {
        return Err(format!(
            "{flag} {v} is not usable: it must be in [0, {end})"
        ));
    }
    Ok(())
}

pub fn recipe(a: &TrainArgs) -> Result<Recipe, String> {
    let mut r = match a.recipe {
        RecipeName::Faithful => Recipe::faithful(!a.no_shuffle),
        RecipeName::Improved => Recipe::improved(),
    };
    if a.no_shuffle {
        r.shuffle = false;
    }
    if let Some(g) = a.augment {
        (r.flips, r.crops) = match g {
            AugmentName::None => (false, false),
            AugmentName::Flips => (true, false),
            AugmentName::Full => (true, true),
        };
    }
    r.flips |= a.flip;
    if let Some(pct) = a.crop_area {
        if !(MIN_CROP_AREA_PCT..=100).contains(&pct) {
            return Err(format!(
                "--crop-area {pct} is not usable: it must be a percentage from \
                 {MIN_CROP_AREA_PCT} to 100"
            ));
        }
        if !r.crops {
            return Err("--crop-area needs crops: --augment full or --recipe improved".into());
        }
        r.crop_area = pct;
    }
    r.label_smoothing = a.label_smoothing.unwrap_or(r.label_smoothing);
    r.warmup = a.warmup.unwrap_or(r.warmup);
    r.momentum = a.momentum.unwrap_or(r.momentum);
    r.weight_decay = a.weight_decay.unwrap_or(r.weight_decay);
    r.dropout = a.dropout.unwrap_or(r.dropout);
    if let Some(s) = a.schedule {
        r.schedule = match s {
            ScheduleName::Constant => Schedule::Constant,
            ScheduleName::Cosine => Schedule::Cosine,
        };
    }
    fraction("--momentum", r.momentum, 1.0)?;
    if !(r.weight_decay >= 0.0 && r.weight_decay.is_finite()) {
        return Err(format!(
            "--weight-decay {} is not usable: it must be a finite number >= 0",
            r.weight_decay
        ));
    }
    fraction("--label-smoothing", r.label_smoothing, 1.0)?;
    if r.warmup > 100_000 {
        return Err(format!(
            "--warmup {} is not usable: it must be at most 100000 epochs",
            r.warmup
        ));
    }
    fraction("--dropout", r.dropout, 0.99)?;
    Ok(r)
}
