//! `tools/pack`: turns a folder of photos (or the original's raw files) into dataset blobs.
//! See tools/README.md for every flag and data/README.md for the blob format.

use catdog_core::blob::{Blob, BlobMeta, BlobWriter, Sibling, Verify, CLASS_NAMES, UNLABELED};
use catdog_guard::escape_path;
use catdog_guard::{errln, outln};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use packer::*;
use rayon::prelude::*;
use std::fs;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "pack",
    version,
    about = "Pack a folder of cat/dog photos (or the original's raw files) into dataset blobs",
    long_about = "Pack a folder of cat/dog photos into the dataset blobs the trainer memory-maps.\n\n\
        Layouts: a flat folder of cat.N.jpg / dog.N.jpg (Kaggle), a folder with Cat/ and Dog/ \
        subfolders (PetImages), or a flat folder of unlabeled images. Files that cannot be packed \
        are skipped with one line each and counted in the summary.\n\n\
        Examples:\n  tools/pack ~/Downloads/train --test-fraction 0.2 -o data\n  \
        tools/pack --fetch petimages -o data\n  \
        tools/pack --from-raw train_data.raw train_label.raw -o data/orig_train.bin\n  \
        tools/pack inspect data/train.bin --dump 3 -o x.png",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    pack: PackArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a blob's header summary, class counts and checksum status; optionally dump a sample.
    Inspect(InspectArgs),
    /// Pack photos and folders of photos, in the order given, into one unlabeled blob (what
    /// `model predict PHOTO...` uses).
    Photos(PhotosArgs),
}

#[derive(Args)]
struct PhotosArgs {
    /// Image files (decoded by content) and folders (their images, in name order).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The blob to write.
    #[arg(short = 'o', long, value_name = "FILE.bin")]
    out: PathBuf,
    /// Image size: N (square) or WxH.
    #[arg(long, default_value = "128x128", value_name = "WxH")]
    size: String,
    /// Skip images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// No summary line.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// The blob to inspect.
    blob: PathBuf,
    /// Write sample I back out as a PNG (to -o, default sample-I.png).
    #[arg(long, value_name = "I")]
    dump: Option<usize>,
    /// Where --dump writes its PNG.
    #[arg(short = 'o', long, value_name = "FILE.png", requires = "dump")]
    out: Option<PathBuf>,
    /// Also list every sample: index, label, source path.
    #[arg(long)]
    list: bool,
}

#[derive(Args, Clone)]
struct PackArgs {
    /// Folder of images: cat.N.jpg/dog.N.jpg, or Cat/ and Dog/ subfolders, or unlabeled images.
    #[arg(required_unless_present_any = ["from_raw", "fetch"], conflicts_with = "from_raw")]
    src: Option<PathBuf>,
    /// Download a public data set into OUT/downloads/ (resuming a partial download), unzip it
    /// and pack it with a 20% stratified test split. `petimages`: Microsoft's PetImages
    /// (kagglecatsanddogs_5340.zip, about 787 MB; CATDOG_DATA_URL replaces the URL).
    #[arg(long, value_name = "petimages", value_parser = ["petimages"],
          conflicts_with_all = ["src", "from_raw", "test", "test_fraction", "unlabeled"])]
    fetch: Option<String>,
    /// Convert the original program's raw files (N x H x W x 3 bytes, N label bytes) into one
    /// blob, in file order, no split; --size gives their image size.
    #[arg(long, num_args = 2, value_names = ["DATA.raw", "LABELS.raw"],
          conflicts_with_all = ["test", "test_fraction", "crop", "unlabeled"])]
    from_raw: Option<Vec<PathBuf>>,
    /// Output folder (train.bin, test.bin, or unlabeled.bin go there), or a FILE.bin when one
    /// blob is written (no split, or --from-raw).
    #[arg(short = 'o', long, default_value = "data", value_name = "DIR|FILE.bin")]
    out: PathBuf,
    /// Image size: N (square) or WxH.
    #[arg(long, default_value = "128x128", value_name = "WxH")]
    size: String,
    /// Centre-crop to the target aspect ratio before resizing (default: squash, aspect not kept).
    #[arg(long)]
    crop: bool,
    /// Resize filter (antialiased convolution): box, bilinear, hamming, catmull-rom, mitchell,
    /// lanczos3.
    #[arg(long, default_value = "bilinear")]
    filter: String,
    /// Put N samples in test.bin (stratified by class), the rest in train.bin.
    #[arg(long, value_name = "N", conflicts_with = "test_fraction")]
    test: Option<usize>,
    /// Put this fraction of the samples in test.bin (stratified by class, rounded).
    #[arg(long, value_name = "F")]
    test_fraction: Option<f64>,
    /// Seed of the split and of the sample order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep listing order (by class, then path) in the blobs instead of a seeded shuffle.
    #[arg(long)]
    no_shuffle: bool,
    /// Pack every image of a flat folder as unlabeled (label 255), whatever its name.
    #[arg(long)]
    unlabeled: bool,
    /// Decoding threads, 1 to 256 like the trainer's --threads (default: all cores, at most
    /// 256). The output does not depend on it.
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Skip images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

/// The command line, parsed. A source folder named like a subcommand (`photos`, `inspect`) is
/// read as the subcommand first; when the arguments do not fit it and a folder of that name
/// exists, they are read again with the folder as `./NAME` (and a note says so).
fn parse_cli() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let sub = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
            let usage = !matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if usage && matches!(sub, "photos" | "inspect") && Path::new(sub).is_dir() {
                let mut again = args.clone();
                again[1] = format!("./{sub}").into();
                if let Ok(c) = Cli::try_parse_from(&again) {
                    eprintln!(
                        "pack: note: reading `{sub}` as the folder ./{sub} (the {sub} subcommand \
                         does not take these arguments)"
                    );
                    return c;
                }
                eprintln!("pack: note: to pack the folder `{sub}`, write ./{sub}");
            }
            e.exit()
        }
    }
}

fn main() -> ExitCode {
    let cli = parse_cli();
    let r = match cli.cmd {
        Some(Cmd::Inspect(a)) => inspect(a),
        Some(Cmd::Photos(a)) => photos(a),
        None if cli.pack.fetch.is_some() => fetch(&cli.pack),
        None => match &cli.pack.from_raw {
            Some(v) => from_raw(&cli.pack, &v[0], &v[1]),
            None => pack_folder(&cli.pack),
        },
    };
    catdog_guard::exit_code(r, "pack: ")
}

/// `--fetch petimages`: download, check and unzip (packer::fetch), then pack with a 20% split.
/// Any failure is one line that gives the commands to do it by hand.
fn fetch(a: &PackArgs) -> Result<(), String> {
    let url = packer::fetch::url();
    let hand = |e: String| format!("{e}; {}", packer::fetch::by_hand(&url, &a.out));
    if is_file_target(&a.out) {
        return Err(format!(
            "--fetch writes train.bin and test.bin: -o {} must be a folder",
            a.out.display()
        ));
    }
    let root = packer::fetch::fetch_petimages(&a.out, a.quiet).map_err(hand)?;
    let mut p = a.clone();
    p.fetch = None;
    p.src = Some(root);
    p.test_fraction = Some(0.2);
    pack_folder(&p).map_err(hand)
}

/// `pack photos`: photos and folders into one unlabeled blob, in the order given.
fn photos(a: PhotosArgs) -> Result<(), String> {
    let (w, h) = parse_size(&a.size)?;
    let resize = Resize {
        width: w,
        height: h,
        crop: false,
        filter: parse_filter("bilinear")?,
    };
    let inputs: Vec<(&Path, &str)> = a.inputs.iter().map(|p| (p.as_path(), "an input")).collect();
    catdog_guard::check_outputs(&inputs, &[(a.out.as_path(), "-o")])?;
    catdog_guard::clean_stale_beside(&[a.out.as_path()], "pack: ")?;
    let (files, mut skipped) = packer::photos::list(&a.inputs)?;
    let (n, more) = packer::photos::pack(&files, &resize, a.max_pixels, &a.out)?;
    skipped.extend(more);
    for s in &skipped {
        eprintln!(
            "skipped {}: {}",
            catdog_guard::escape_path(&s.path),
            s.reason
        );
    }
    if n == 0 {
        return Err(format!(
            "none of the {} files given could be read as an image",
            files.len()
        ));
    }
    if !a.quiet {
        println!(
            "wrote {}: {n} photos, {} skipped",
            a.out.display(),
            skipped.len()
        );
    }
    Ok(())
}

/// A note when the trainer cannot use images of this size (it takes square images whose side
/// is a multiple of 8, from 8 to 1024).
fn trainer_size_note(w: u32, h: u32) -> Option<String> {
    let ok = w == h && (8..=1024).contains(&w) && w.is_multiple_of(8);
    (!ok).then(|| {
        format!(
            "pack: note: the trainer cannot use {w}x{h} images (it takes square images whose side              is a multiple of 8, from 8 to 1024, e.g. --size 128); such a blob serves only              `tools/pack inspect` and other tools"
        )
    })
}

/// Most decoding threads, the trainer's cap on --threads.
const MAX_JOBS: usize = 256;

fn is_file_target(out: &Path) -> bool {
    out.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

fn counts_line(labels: impl Iterator<Item = u8>) -> String {
    let mut c = [0usize; 3];
    for l in labels {
        c[if l == UNLABELED { 2 } else { l.min(1) as usize }] += 1;
    }
    let mut parts = Vec::new();
    for (k, name) in CLASS_NAMES.iter().enumerate() {
        if c[k] > 0 {
            parts.push(format!("{name} {}", c[k]));
        }
    }
    if c[2] > 0 {
        parts.push(format!("unlabeled {}", c[2]));
    }
    parts.join(", ")
}

fn ensure_dir(d: &Path) -> Result<(), String> {
    fs::create_dir_all(d).map_err(|e| format!("cannot create output folder {}: {e}", d.display()))
}

fn pack_folder(a: &PackArgs) -> Result<(), String> {
    let t0 = Instant::now();
    let src = a.src.as_ref().expect("clap requires SRC");
    let (w, h) = parse_size(&a.size)?;
    if let Some(note) = trainer_size_note(w, h) {
        eprintln!("{note}");
    }
    let resize = Resize {
        width: w,
        height: h,
        crop: a.crop,
        filter: parse_filter(&a.filter)?,
    };
    let test = match (a.test, a.test_fraction) {
        (Some(n), _) => Some(TestSize::Count(n)),
        (_, Some(f)) if (0.0..=1.0).contains(&f) => Some(TestSize::Fraction(f)),
        (_, Some(f)) => return Err(format!("--test-fraction {f} is not between 0 and 1")),
        _ => None,
    };
    let jobs = match a.jobs {
        Some(j) if !(1..=MAX_JOBS).contains(&j) => {
            return Err(format!(
                "--jobs {j} is not usable: it must be between 1 and {MAX_JOBS}"
            ))
        }
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_JOBS)),
    };
    let listing = scan(src, a.unlabeled)?;
    let unlabeled = listing.layout == Layout::Unlabeled;
    if unlabeled && test.is_some() {
        return Err("a split needs labels, and this folder is packed as unlabeled".into());
    }
    // Where the blobs go; checked before any decoding.
    let file_target = is_file_target(&a.out);
    if file_target && test.is_some() {
        return Err(format!(
            "-o {} is a file, but a split writes train.bin and test.bin: give a folder",
            a.out.display()
        ));
    }
    let out_dir = if file_target {
        a.out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    } else {
        a.out.clone()
    };
    ensure_dir(&out_dir)?;
    clean_stale(&out_dir)?;
    let main_out = if file_target {
        a.out.clone()
    } else if unlabeled {
        out_dir.join("unlabeled.bin")
    } else {
        out_dir.join("train.bin")
    };
    // Every output (and its temporary name) is checked now, not after decoding.
    let test_out = out_dir.join("test.bin");
    let mut outputs = vec![(main_out.as_path(), "-o")];
    if test.is_some() {
        outputs.push((test_out.as_path(), "-o"));
    }
    catdog_guard::check_outputs(&[(src.as_path(), "the source folder")], &outputs)?;
    if !a.quiet {
        errln!(
            "pack: {}: {} layout, {} image files to decode, {} other entries",
            src.display(),
            listing.layout,
            listing.candidates.len(),
            listing.skipped.len()
        )?;
    }
    for s in &listing.skipped {
        errln!("skipped {}: {}", escape_path(&s.path), s.reason)?;
    }
    if std::env::var_os("CATDOG_PACK_PAUSE_AFTER_LISTING").is_some() {
        // Test hook: lets a test delete files between listing and decoding.
        errln!("pack: listed; waiting for a line on stdin")?;
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }

    let cands = &listing.candidates;
    let n = cands.len();
    let il = w as usize * h as usize * 3;
    let mut ok = vec![false; n];
    let mut skipped: Vec<Skip> = listing.skipped.clone();
    // Decoded images go to a staging map backed by an already-unlinked file in the output
    // folder: memory stays bounded by the page cache, and nothing is left behind if killed.
    let mut staging = if n == 0 {
        None
    } else if ((n * il) as u64) < mem_available() / 2 {
        // Fits in memory: anonymous, faulted in by the decoding threads as they fill it (a
        // prefault in one go costs less CPU but runs on one thread before any decoding starts).
        Some(
            memmap2::MmapOptions::new()
                .len(n * il)
                .map_anon()
                .map_err(|e| format!("cannot allocate {} bytes of staging memory: {e}", n * il))?,
        )
    } else {
        // Bigger than memory: a file in the output folder, unlinked at once, so memory stays
        // bounded by the page cache and nothing is left behind if the run is killed.
        let p = out_dir.join(format!(".pack-staging.{}.tmp", std::process::id()));
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| format!("cannot write in output folder {}: {e}", out_dir.display()))?;
        let _ = fs::remove_file(&p);
        f.set_len((n * il) as u64)
            .map_err(|e| format!("cannot size staging file in {}: {e}", out_dir.display()))?;
        // SAFETY: the file is private to this process (created new, then unlinked).
        Some(
            unsafe { memmap2::MmapMut::map_mut(&f) }
                .map_err(|e| format!("cannot map staging file: {e}"))?,
        )
    };
    // Fail now, not after minutes of decoding, if the output folder is not writable.
    if n > 0 {
        let probe = out_dir.join(format!(".pack-probe.{}.tmp", std::process::id()));
        fs::File::create(&probe)
            .map_err(|e| format!("cannot write in output folder {}: {e}", out_dir.display()))?;
        let _ = fs::remove_file(&probe);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| format!("cannot start threads: {e}"))?;
    let pb = if a.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} {rate} ETA {eta}",
            )
            .unwrap()
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} images/s", s.per_sec());
                },
            )
            .progress_chars("=> "),
        )
    };
    let t_decode = Instant::now();
    if let Some(map) = staging.as_mut() {
        const CHUNK: usize = 1024;
        let max_px = a.max_pixels;
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            let slots = &mut map[start * il..end * il];
            let results: Vec<Result<(), String>> = pool.install(|| {
                slots
                    .par_chunks_mut(il)
                    .zip(&cands[start..end])
                    .map_init(
                        || Loader::new(max_px),
                        |ld, (slot, c)| {
                            let r = load(ld, &c.path, &resize, slot);
                            pb.inc(1);
                            r
                        },
                    )
                    .collect()
            });
            for (k, r) in results.into_iter().enumerate() {
                let c = &cands[start + k];
                match r {
                    Ok(()) => ok[start + k] = true,
                    Err(reason) => {
                        pb.suspend(|| errln!("skipped {}: {reason}", escape_path(&c.path)))?;
                        skipped.push(Skip {
                            path: c.path.clone(),
                            label: Some(c.label).filter(|&l| l != UNLABELED),
                            reason,
                        });
                    }
                }
            }
        }
    }
    pb.finish_and_clear();
    let decode_s = t_decode.elapsed().as_secs_f64();

    // The packed samples, in listing order.
    let good: Vec<usize> = (0..n).filter(|&i| ok[i]).collect();
    let labels: Vec<u8> = cands.iter().map(|c| c.label).collect();
    // The names' bytes, exactly: a name that is not UTF-8 still names its file.
    let sources: Vec<Vec<u8>> = cands
        .iter()
        .map(|c| std::os::unix::ffi::OsStrExt::as_bytes(c.path.as_os_str()).to_vec())
        .collect();
    print_summary(&listing, &good, &skipped, &labels)?;
    if good.is_empty() {
        return Err(format!("nothing could be packed from {}", src.display()));
    }
    let good_labels: Vec<u8> = good.iter().map(|&i| labels[i]).collect();
    let (train, test_set) = if unlabeled {
        (
            (0..good.len()).collect::<Vec<_>>(),
            Vec::new(), // prediction data keeps name order
        )
    } else {
        split(&good_labels, test, a.seed, !a.no_shuffle)?
    };
    if !unlabeled {
        one_class_check(&good_labels, test.is_some(), src)?;
    }
    let to_idx = |v: &[usize]| v.iter().map(|&k| good[k]).collect::<Vec<_>>();
    let note =
        |set: &str, count: usize| {
            format!(
            "tools/pack {}: {} set, {count} samples from {} ({} layout); {w}x{h}, {}, filter {}; \
             {}; seed {}; order {}",
            env!("CARGO_PKG_VERSION"),
            set,
            src.to_string_lossy(),
            match listing.layout {
                Layout::Kaggle => "kaggle",
                Layout::ClassFolders => "class-folder",
                Layout::Unlabeled => "unlabeled",
            },
            if a.crop { "centre crop" } else { "squashed (aspect not kept)" },
            a.filter.to_ascii_lowercase(),
            match test {
                None => "no split".to_string(),
                Some(TestSize::Count(k)) => format!("split --test {k}"),
                Some(TestSize::Fraction(f)) => format!("split --test-fraction {f}"),
            },
            a.seed,
            if unlabeled || a.no_shuffle { "listing" } else { "shuffled" }
        )
        };
    let map = staging.as_ref().expect("n > 0");
    let mut outs = vec![(
        main_out,
        to_idx(&train),
        if unlabeled { "unlabeled" } else { "train" },
    )];
    if test.is_some() {
        outs.push((test_out.clone(), to_idx(&test_set), "test"));
    }
    // A split is written as a pair: both blobs go to temporary files first, each recording the
    // other's count and payload checksum, and only then are both renamed into place. A failure
    // (or a kill) before the renames leaves the old pair untouched; one between them leaves a
    // pair the trainer refuses (blob::check_pair).
    let crcs: Vec<u32> = outs
        .iter()
        .map(|(_, order, _)| set_crc(map, il, order))
        .collect();
    let mut pending = Vec::new();
    for (k, (path, order, set)) in outs.iter().enumerate() {
        let sibling = (outs.len() == 2).then(|| Sibling {
            count: outs[1 - k].1.len() as u64,
            payload_crc: crcs[1 - k],
            is_test: k == 0,
        });
        let p = write_set(
            path,
            map,
            (w, h),
            &sources,
            &labels,
            order,
            note(set, order.len()),
            sibling,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        pending.push(p);
    }
    for p in pending {
        p.commit()?;
    }
    for (path, order, _) in &outs {
        outln!(
            "wrote {}: {} samples ({})",
            path.display(),
            order.len(),
            counts_line(order.iter().map(|&i| labels[i]))
        )?;
    }
    let secs = t0.elapsed().as_secs_f64();
    outln!(
        "{} images in {:.2} s: {:.0} images/s overall, {:.0} images/s decode+resize ({} threads)",
        good.len(),
        secs,
        good.len() as f64 / secs,
        n as f64 / decode_s.max(1e-9),
        jobs
    )?;
    Ok(())
}

/// A labeled pack with no sample of a class teaches the trainer nothing (it would report 100%
/// accuracy on one class): refused when splitting (training data), a warning otherwise (a blob
/// for `eval` or `predict` may hold one class on purpose). Names the missing class.
fn one_class_check(labels: &[u8], split: bool, src: &Path) -> Result<(), String> {
    for (k, name) in CLASS_NAMES.iter().enumerate() {
        if labels.iter().any(|&l| l as usize == k) {
            continue;
        }
        let msg = format!(
            "{}: no {name} photo was packed (class {k} is missing): a network trained on one \
             class learns nothing",
            src.display()
        );
        if split {
            return Err(format!(
                "{msg}; add {name} photos (or fix the folder names) and pack again"
            ));
        }
        errln!("pack: warning: {msg}")?;
    }
    Ok(())
}

/// Removes temporary files that an interrupted earlier run (a process no longer alive) left in
/// `dir`: `.NAME.bin.PID.tmp` (a blob being written), `.pack-staging.PID.tmp`, `.pack-probe.PID.tmp`.
fn clean_stale(dir: &Path) -> Result<(), String> {
    catdog_guard::clean_stale(
        dir,
        |what| what.ends_with(".bin") || what == "pack-staging" || what == "pack-probe",
        "pack: ",
    )
}

/// MemAvailable from /proc/meminfo, in bytes (0 if unknown: then staging goes to a file).
fn mem_available() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn print_summary(
    listing: &Listing,
    good: &[usize],
    skipped: &[Skip],
    labels: &[u8],
) -> Result<(), String> {
    let names: Vec<&str> = if listing.layout == Layout::Unlabeled {
        vec!["unlabeled"]
    } else {
        CLASS_NAMES.to_vec()
    };
    let idx = |l: Option<u8>| -> Option<usize> {
        match (listing.layout, l) {
            (Layout::Unlabeled, _) => Some(0),
            (_, Some(l)) if l != UNLABELED => Some(l as usize),
            _ => None,
        }
    };
    let mut packed = vec![0usize; names.len()];
    let mut skip = vec![0usize; names.len()];
    let mut other = 0usize;
    for &i in good {
        packed[idx(Some(labels[i])).unwrap_or(0)] += 1;
    }
    for s in skipped {
        match idx(s.label) {
            Some(k) => skip[k] += 1,
            None => other += 1,
        }
    }
    outln!(
        "summary: {} packed, {} skipped ({} layout)",
        good.len(),
        skipped.len(),
        listing.layout
    )?;
    outln!("  {:<10} {:>8} {:>8}", "class", "packed", "skipped")?;
    for (k, name) in names.iter().enumerate() {
        outln!("  {:<10} {:>8} {:>8}", name, packed[k], skip[k])?;
    }
    if other > 0 {
        outln!("  {:<10} {:>8} {:>8}", "(no class)", "-", other)?;
    }
    Ok(())
}

fn from_raw(a: &PackArgs, data: &Path, labels_path: &Path) -> Result<(), String> {
    let (w, h) = parse_size(&a.size)?;
    if let Some(note) = trainer_size_note(w, h) {
        eprintln!("{note}");
    }
    let il = w as usize * h as usize * 3;
    // Regular files only: a FIFO would block, a device never end.
    let data_file = catdog_guard::open_regular(data, "the raw image file")?;
    let dsize = data_file
        .metadata()
        .map_err(|e| format!("{}: {e}", data.display()))?
        .len();
    let mut labels = Vec::new();
    catdog_guard::open_regular(labels_path, "the raw label file")?
        .read_to_end(&mut labels)
        .map_err(|e| format!("{}: {e}", labels_path.display()))?;
    if dsize % il as u64 != 0 {
        return Err(format!(
            "{} is {dsize} bytes, not a whole number of {w}x{h}x3 images ({il} bytes each); \
             wrong --size?",
            data.display()
        ));
    }
    let n = (dsize / il as u64) as usize;
    if labels.len() != n {
        return Err(format!(
            "{} holds {n} images but {} holds {} labels",
            data.display(),
            labels_path.display(),
            labels.len()
        ));
    }
    if n == 0 {
        return Err(format!("{} is empty: nothing to pack", data.display()));
    }
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l > 1 && l != UNLABELED)
    {
        return Err(format!(
            "{}: label {l} at index {i} (0 = cat, 1 = dog, 255 = unlabeled)",
            labels_path.display()
        ));
    }
    let out = if is_file_target(&a.out) {
        if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            ensure_dir(p)?;
        }
        a.out.clone()
    } else {
        ensure_dir(&a.out)?;
        let stem = data
            .file_stem()
            .map_or("raw".into(), |s| s.to_string_lossy());
        a.out.join(format!("{stem}.bin"))
    };
    catdog_guard::check_outputs(
        &[
            (data, "the raw image file"),
            (labels_path, "the raw label file"),
        ],
        &[(out.as_path(), "-o")],
    )?;
    clean_stale(
        out.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let dname = data.to_string_lossy();
    let meta = BlobMeta {
        height: h,
        width: w,
        channels: 3,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        labels: labels.clone(),
        sources: (0..n).map(|i| format!("{dname}[{i}]").into()).collect(),
        note: format!(
            "tools/pack {}: --from-raw {} {}; {w}x{h}x3, file order, no split",
            env!("CARGO_PKG_VERSION"),
            dname,
            labels_path.to_string_lossy()
        ),
    };
    let mut wr = BlobWriter::create(&out, &meta)?;
    let mut rd = BufReader::with_capacity(1 << 20, data_file);
    let mut buf = vec![0u8; il];
    for i in 0..n {
        rd.read_exact(&mut buf)
            .map_err(|e| format!("{}: image {i}: {e}", data.display()))?;
        wr.push(&buf)?;
    }
    wr.finish()?;
    outln!(
        "wrote {}: {n} samples ({}), {w}x{h}x3, file order",
        out.display(),
        counts_line(labels.iter().copied())
    )?;
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<(), String> {
    let dump_out = a.dump.map(|i| {
        a.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("sample-{i}.png")))
    });
    if let Some(out) = &dump_out {
        // Before the blob is mapped: -o must not be the blob itself (that truncated the mapped
        // file under the reader: a bus error, and the blob was lost).
        catdog_guard::check_outputs(&[(a.blob.as_path(), "the blob")], &[(out, "-o")])?;
        catdog_guard::clean_stale_beside(&[out], "pack: ")?;
    }
    let b = Blob::open_with(&a.blob, Verify::MetadataOnly)?;
    let hd = b.header();
    let (h, w, c) = b.dims();
    let size = fs::metadata(&a.blob).map(|m| m.len()).unwrap_or(0);
    outln!("file:      {} ({size} bytes)", a.blob.display())?;
    outln!("format:    catdog dataset blob, version {}", hd.version)?;
    outln!("samples:   {}", b.len())?;
    outln!("image:     {h}x{w}x{c} (height x width x channels, HWC u8)")?;
    outln!(
        "payload:   {} bytes at offset {} (64-byte aligned)",
        b.payload().len(),
        hd.payload_offset
    )?;
    let names = b.class_names();
    let counts = b.label_counts();
    let mut parts: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(k, nm)| format!("{k} = {nm}: {}", counts[k]))
        .collect();
    parts.push(format!("unlabeled: {}", counts[names.len()]));
    outln!("classes:   {}", parts.join(", "))?;
    outln!("note:      {}", b.note())?;
    if let Some(sib) = b.sibling() {
        outln!(
            "pair:      packed together with a {} set of {} samples (payload checksum {:08x})",
            if sib.is_test { "test" } else { "training" },
            sib.count,
            sib.payload_crc
        )?;
    }
    if !b.is_empty() {
        outln!("first:     {}", b.source(0))?;
    }
    let payload = b.verify_payload();
    match &payload {
        Ok(()) => outln!(
            "checksums: header+metadata ok ({:08x}), payload ok ({:08x})",
            hd.header_crc,
            hd.payload_crc
        )?,
        Err(e) => outln!("checksums: header+metadata ok, PAYLOAD BAD: {e}")?,
    }
    if a.list {
        for i in 0..b.len() {
            let l = b.labels()[i];
            let name = names.get(l as usize).map_or("unlabeled", |s| s.as_str());
            outln!("{i}\t{name}\t{}", b.source(i))?;
        }
    }
    if let Some(i) = a.dump {
        if i >= b.len() {
            return Err(format!("--dump {i}: the blob has {} samples", b.len()));
        }
        let out = dump_out.expect("set with --dump");
        let ct = match c {
            1 => image::ExtendedColorType::L8,
            2 => image::ExtendedColorType::La8,
            3 => image::ExtendedColorType::Rgb8,
            _ => image::ExtendedColorType::Rgba8,
        };
        // Encoded in memory, then written atomically (temporary file, fsync, rename).
        let mut png = std::io::Cursor::new(Vec::new());
        image::write_buffer_with_format(
            &mut png,
            b.image(i),
            w as u32,
            h as u32,
            ct,
            image::ImageFormat::Png,
        )
        .map_err(|e| format!("cannot encode {}: {e}", out.display()))?;
        catdog_guard::write_atomic(&out, png.get_ref())?;
        outln!("dumped sample {i} ({}) to {}", b.source(i), out.display())?;
    }
    payload.map_err(|e| format!("{}: {e}", a.blob.display()))
}
