//! `model`: train, evaluate and benchmark the cat-vs-dog CNN. See README.md for every flag.

use catdog::config::Hyper;
use catdog::cpu;
use catdog::dataset::{open_blob, Synthetic};
use catdog::model::Net;
use catdog::parameters;
use catdog::train::{self, EpochOptions};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "model",
    version,
    about = "Train and run a cat-vs-dog CNN on the CPU (asm! AVX-512 kernels)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train on a packed blob, then report test accuracy (the default command).
    Train(TrainArgs),
    /// Accuracy of a parameter file on a packed blob.
    Eval(EvalArgs),
    /// Training and inference throughput on synthetic data.
    Bench(BenchArgs),
}

/// Network shape flags (the image size comes from the data).
#[derive(Args, Clone)]
struct ArchArgs {
    /// Output channels of conv1,conv2,conv3 (multiples of 16).
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [32, 64, 128])]
    widths: Vec<usize>,
    /// Neurons of fc1 (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    fc1: usize,
    /// Worker threads (default: all cores). Results are bitwise the same for any count.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Clone)]
struct TrainArgs {
    /// Training blob made by tools/pack.
    #[arg(long, default_value = "data/train.bin")]
    train: PathBuf,
    /// Test blob made by tools/pack.
    #[arg(long, default_value = "data/test.bin")]
    test: PathBuf,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from this parameters.raw file (the original's format) instead of He-normal init.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Write the trained parameters here, in the original's parameters.raw format.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Visit samples in file order every epoch, as the original does.
    #[arg(long)]
    no_shuffle: bool,
    /// Use only the first N training samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Print the per-batch line every N steps (0: never).
    #[arg(long, default_value_t = 1)]
    log_every: usize,
    /// Print the memory plan and exit without training.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    arch: ArchArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// Parameter file (parameters.raw format).
    #[arg(long)]
    params: PathBuf,
    /// Packed blob to evaluate on.
    #[arg(long, default_value = "data/test.bin")]
    data: PathBuf,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[command(flatten)]
    arch: ArchArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Training batches to time (after one warm-up batch).
    #[arg(long, default_value_t = 12)]
    batches: usize,
    #[arg(long, default_value_t = 128)]
    image: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[command(flatten)]
    arch: ArchArgs,
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn hyper(arch: &ArchArgs, image: usize, batch: usize) -> Hyper {
    Hyper {
        image,
        widths: [arch.widths[0], arch.widths[1], arch.widths[2]],
        fc1: arch.fc1,
        batch,
        threads: arch.threads.unwrap_or_else(default_threads),
        ..Hyper::default()
    }
}

fn make_net(h: &Hyper) -> Result<Net, String> {
    let path = cpu::detect();
    if let Some(line) = cpu::notice(path) {
        eprintln!("{line}");
    }
    Net::new(h, path, false)
}

fn train_cmd(a: TrainArgs) -> Result<(), String> {
    let mut h = hyper(&a.arch, 128, a.batch_size);
    h.epochs = a.epochs;
    h.lr = a.lr;
    h.seed = a.seed;
    if a.dry_run {
        h.shapes()?;
        println!("{}", Net::plan(&h, false)?.report());
        return Ok(());
    }
    let train_blob = open_blob(&a.train, "training", true)?;
    let test_blob = open_blob(&a.test, "test", true)?;
    h.image = train_blob.dims().0;
    if test_blob.dims() != train_blob.dims() {
        return Err(format!(
            "{} has {:?} images but {} has {:?}: pack both with the same --size",
            a.train.display(),
            train_blob.dims(),
            a.test.display(),
            test_blob.dims()
        ));
    }
    let mut net = make_net(&h)?;
    match &a.init {
        Some(p) => {
            let shapes = net.shapes.clone();
            parameters::read_raw(p, &shapes, net.params_mut())?
        }
        None => {
            let (shapes, seed) = (net.shapes.clone(), h.seed);
            parameters::he_init(&shapes, net.params_mut(), seed)
        }
    }
    net.repack();
    let n = a.limit.unwrap_or(usize::MAX).min(train_blob.len());
    if n < h.batch {
        return Err(format!(
            "{n} training samples are fewer than one batch of {}",
            h.batch
        ));
    }
    let opts = EpochOptions {
        log_every: a.log_every,
        flips: false,
    };
    let started = Instant::now();
    for epoch in 1..=h.epochs {
        let order = train::epoch_order(n, !a.no_shuffle, h.seed, epoch);
        let st = train::run_epoch(&mut net, &train_blob, &order, epoch, &opts)?;
        eprintln!(
            "epoch {epoch}/{}: train loss {:.4}, {:.1} samples/s, {:.1} s elapsed",
            h.epochs,
            st.mean_loss,
            st.samples as f64 / st.seconds,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(p) = &a.save {
        parameters::write_raw(p, &net.shapes, net.params())?;
        eprintln!("saved parameters to {}", p.display());
    }
    let probs = train::predict(&mut net, &test_blob);
    println!(
        "Accuracy is: {:.6}",
        train::accuracy(&probs, test_blob.labels())
    );
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<(), String> {
    let blob = open_blob(&a.data, "evaluation", true)?;
    let h = hyper(&a.arch, blob.dims().0, a.batch_size);
    let mut net = make_net(&h)?;
    let shapes = net.shapes.clone();
    parameters::read_raw(&a.params, &shapes, net.params_mut())?;
    net.repack();
    let probs = train::predict(&mut net, &blob);
    println!("Accuracy is: {:.6}", train::accuracy(&probs, blob.labels()));
    Ok(())
}

fn bench_cmd(a: BenchArgs) -> Result<(), String> {
    let mut h = hyper(&a.arch, a.image, a.batch_size);
    let shapes = h.shapes()?;
    h.epochs = 1;
    let mut net = make_net(&h)?;
    parameters::he_init(&shapes, net.params_mut(), 1);
    net.repack();
    let n = (a.batches + 1) * h.batch;
    let data = Synthetic::new(n, a.image, 7);
    let opts = EpochOptions {
        log_every: 0,
        flips: false,
    };
    let order: Vec<u32> = (0..n as u32).collect();
    // Warm-up: one batch (page faults, caches, frequency).
    train::run_epoch(&mut net, &data, &order[..h.batch], 1, &opts)?;
    let st = train::run_epoch(&mut net, &data, &order[h.batch..], 1, &opts)?;
    let train_rate = st.samples as f64 / st.seconds;
    let _ = train::predict(&mut net, &data);
    let t = Instant::now();
    let probs = train::predict(&mut net, &data);
    let infer_rate = probs.len() as f64 / t.elapsed().as_secs_f64();
    let gflop = 2.0 * shapes.train_macs() as f64 / 1e9;
    println!(
        "config: image {}, widths {:?}, fc1 {}, batch {}, threads {}, path {:?}",
        h.image, h.widths, h.fc1, h.batch, h.threads, net.path
    );
    println!("train: {:.1} GFLOP/s", train_rate * gflop);
    println!("train: {train_rate:.1} samples/s");
    println!("infer: {infer_rate:.1} samples/s");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => match Cli::parse_from(["model", "train"]).command {
            Some(Command::Train(a)) => train_cmd(a),
            _ => unreachable!("`model train` parses as the train command"),
        },
        Some(Command::Train(a)) => train_cmd(a),
        Some(Command::Eval(a)) => eval_cmd(a),
        Some(Command::Bench(a)) => bench_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
