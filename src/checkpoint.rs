//! Resumable training checkpoints.
//!
//! A checkpoint holds everything needed to continue a run exactly where it stopped: the
//! hyperparameters and recipe it was started with, how many epochs are done, the state of the
//! random generator, the parameters, the momentum buffer and the metrics history.
//!
//! [`save`] writes a [`CheckpointRef`] through a temporary file in the same directory, fsyncs it and renames it over
//! the target ([`crate::guard::write_atomic`]), then fsyncs the directory: a kill at any
//! moment leaves either the old checkpoint or the new one under the name, never a mix. [`load`] checks everything before it
//! trusts anything: sizes against the file length before allocating, checksums, then values.
//!
//! # Format (version 1)
//!
//! All integers and floats little-endian; `u64` for every count and size.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"CATDOGCK"` |
//! | 8 | 4 | format version, `u32` = 1 |
//! | 12 | 4 | header length in bytes, `u32` = 160 (everything up to and including the header CRC) |
//! | 16 | 8 | `hyper.image` |
//! | 24 | 24 | `hyper.widths[0..3]` |
//! | 48 | 8 | `hyper.fc1` |
//! | 56 | 8 | `hyper.epochs` |
//! | 64 | 8 | `hyper.batch` |
//! | 72 | 4 | `hyper.lr`, `f32` |
//! | 76 | 4 | `recipe.label_smoothing`, `f32` (reserved and 0 in files before it existed) |
//! | 80 | 8 | `hyper.seed` |
//! | 88 | 8 | `hyper.threads` |
//! | 96 | 1 | `recipe.shuffle` (0/1) |
//! | 97 | 1 | `recipe.flips` (0/1) |
//! | 98 | 1 | `recipe.schedule`: 0 = Constant, 1 = Cosine |
//! | 99 | 1 | `recipe.crops`: 0 = off, else on with the smallest crop `recipe.crop_area` in percent of the image (1 = 35%, as files written before `--crop-area` say it; reserved and 0 before crops) |
//! | 100 | 4 | `recipe.momentum`, `f32` |
//! | 104 | 4 | `recipe.weight_decay`, `f32` |
//! | 108 | 4 | `recipe.dropout`, `f32` |
//! | 112 | 8 | epochs done |
//! | 120 | 8 | rng state |
//! | 128 | 8 | P = parameter count (must equal `hyper.shapes()?.param_count()`) |
//! | 136 | 8 | V = velocity count (0, or P when training with momentum) |
//! | 144 | 8 | H = history record count |
//! | 152 | 4 | `recipe.warmup`, `u32` (reserved and 0 before) |
//! | 156 | 4 | CRC-32 of bytes 0..156 (so a damaged count is reported as damage, not as a size) |
//! | 160 | 56 H | history records, 56 bytes each (below) |
//! | . | 4 P | parameters, `f32`, in `parameters.raw` order |
//! | . | 4 V | velocity, `f32`, same order |
//! | . | 4 | CRC-32 (IEEE, as `crc32fast`) of every byte before it |
//!
//! A history record: `epoch` u64, `train_loss` f64, `test_accuracy` f64, `test_loss` f64,
//! `samples_per_s` f64, `elapsed_s` f64, `lr` f32, then a `u32` of flags: bit 0 = test accuracy
//! present, bit 1 = test loss present (an absent value is stored as 0.0).
//!
//! The file size is therefore exactly `160 + 56 H + 4 (P + V) + 4`; anything else is refused.
//!
//! # Version 2: the run record
//!
//! The trainer writes version 2: the same header (with version 2), then, between the header and
//! the history, a [`RUN_LEN`]-byte run record of what else determines the result: `--limit`
//! (`u64`, `u64::MAX` = none), then the training blob's header CRC and payload CRC (`u32` each)
//! and sample count (`u64`), then the same three for the test blob (all zero for a run trained
//! with `--no-test`). The file's final CRC
//! covers it. Version 1 files (no record) are still read; `--resume` refuses
//! them without `--force`, since their data cannot be checked.
//!
//! # Version 3: model selection
//!
//! A run with a validation set (`--val-fraction`, `--val`) writes version 3: version 2 with a
//! [`SELECT_LEN`]-byte selection record after the run record: the validation source (`u32`: 1 =
//! a fraction of the training data, 2 = a blob), flags (`u32`: bit 0 `--save-best`, bit 1
//! `--val-tta`; files written before `--val-tta` have 0 or 1), the fraction
//! (`f64`, 0 for a blob), the validation blob's header CRC, payload CRC (`u32` each) and count
//! (`u64`, all 0 for a fraction), then the best validation epoch so far (`u64`, 0 = none) and
//! its validation accuracy (`f64`). Its history records are [`RECORD_LEN_V3`] bytes: the 56 of
//! version 1, then the validation accuracy and loss (`f64` each; flag bits 2 and 3 say they
//! are present).

use crate::augment::{CROP_AREA_PCT, LEGACY_CROP_AREA_PCT, MIN_CROP_AREA_PCT};
use crate::config::{Hyper, Recipe, Schedule};
use crate::guard::write_atomic;
use crate::metrics::EpochRecord;
use std::path::Path;

/// The first 8 bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"CATDOGCK";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header, its CRC included.
pub const HEADER_LEN: usize = 160;
/// Bytes of one history record.
pub const RECORD_LEN: usize = 56;
/// The version that carries a [`RunRecord`].
pub const VERSION_RUN: u32 = 2;
/// Bytes of the run record of version 2.
pub const RUN_LEN: usize = 40;
/// The version that carries a [`Selection`] (and validation metrics in its history).
pub const VERSION_SELECT: u32 = 3;
/// Bytes of the selection record of version 3.
pub const SELECT_LEN: usize = 48;
/// Bytes of one history record in version 3.
pub const RECORD_LEN_V3: usize = 72;

/// Where a run's validation samples come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Validation {
    /// `--val-fraction F`: a stratified split of the training data, seeded by the run's seed.
    Fraction(f64),
    /// `--val PATH`: a blob of its own, by checksum.
    Blob(BlobId),
}

/// How a run chooses its model: the validation set, whether it is evaluated with test-time
/// augmentation (`--val-tta`), whether the best epoch is kept (`--save-best`), and the best
/// validation epoch so far with its accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selection {
    pub val: Validation,
    pub tta: bool,
    pub save_best: bool,
    pub best: Option<(usize, f64)>,
}

impl Selection {
    /// What follows a validation accuracy in the log: `" with TTA"` under `--val-tta`.
    pub fn tta_note(&self) -> &'static str {
        if self.tta {
            " with TTA"
        } else {
            ""
        }
    }
}

/// The checksums that identify a dataset blob (its header+metadata CRC, payload CRC, count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobId {
    pub header_crc: u32,
    pub payload_crc: u32,
    pub count: u64,
}

/// The stored id of a blob that is not there (a run without a test blob, a validation
/// fraction's blob).
const NO_BLOB: BlobId = BlobId {
    header_crc: 0,
    payload_crc: 0,
    count: 0,
};

impl BlobId {
    pub fn of(b: &crate::blob::Blob) -> Self {
        Self {
            header_crc: b.header().header_crc,
            payload_crc: b.header().payload_crc,
            count: b.len() as u64,
        }
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} samples, checksums {:08x}/{:08x}",
            self.count, self.header_crc, self.payload_crc
        )
    }
}

/// What determines a run's result besides the hyperparameters and recipe: the samples used
/// (`--limit`) and the data (training and test blobs, by checksum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub limit: Option<u64>,
    pub train: BlobId,
    /// `None`: trained with `--no-test` (stored as an all-zero id; a blob is never empty).
    pub test: Option<BlobId>,
}

/// A loaded checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub hyper: Hyper,
    pub recipe: Recipe,
    /// Epochs finished; training resumes at this (0-based) epoch.
    pub epochs_done: usize,
    /// State of the training random generator after `epochs_done` epochs.
    pub rng_state: u64,
    /// All parameters, in `parameters.raw` order.
    pub params: Vec<f32>,
    /// Momentum buffer, same layout as `params`; empty when training without momentum.
    pub velocity: Vec<f32>,
    /// One record per finished epoch (as the trainer keeps them).
    pub history: Vec<EpochRecord>,
    /// Limit and data of the run (version 2); `None` in a version 1 file.
    pub run: Option<RunRecord>,
    /// Validation and best epoch (version 3); `None` in older files and runs without one.
    pub selection: Option<Selection>,
}

fn schedule_code(s: Schedule) -> u8 {
    match s {
        Schedule::Constant => 0,
        Schedule::Cosine => 1,
    }
}

fn schedule_from(code: u8) -> Option<Schedule> {
    match code {
        0 => Some(Schedule::Constant),
        1 => Some(Schedule::Cosine),
        _ => None,
    }
}

/// Checks what both [`save`] and [`load`] require of the contents; `Err` says what is wrong.
fn validate(hyper: &Hyper, recipe: &Recipe, params: usize, velocity: usize) -> Result<(), String> {
    let shapes = hyper
        .shapes()
        .map_err(|e| format!("hyperparameters: {e}"))?;
    let want = shapes.param_count();
    if params != want {
        return Err(format!(
            "holds {params} parameters, but image {}, widths {}/{}/{}, fc1 {} need {want}",
            hyper.image, hyper.widths[0], hyper.widths[1], hyper.widths[2], hyper.fc1
        ));
    }
    if velocity != 0 && velocity != params {
        return Err(format!(
            "holds {velocity} momentum values, expected 0 or {params} (one per parameter)"
        ));
    }
    for (name, v) in [
        ("momentum", recipe.momentum),
        ("weight decay", recipe.weight_decay),
        ("dropout", recipe.dropout),
        ("label smoothing", recipe.label_smoothing),
    ] {
        if !v.is_finite() {
            return Err(format!("recipe {name} {v} is not a finite number"));
        }
    }
    if !(0.0..1.0).contains(&recipe.label_smoothing) {
        return Err(format!(
            "recipe label smoothing {} is not in [0, 1)",
            recipe.label_smoothing
        ));
    }
    if recipe.crops && !(MIN_CROP_AREA_PCT..=100).contains(&recipe.crop_area) {
        return Err(format!(
            "recipe crop area {}% is not in {MIN_CROP_AREA_PCT}-100%",
            recipe.crop_area
        ));
    }
    if recipe.warmup > u32::MAX as usize {
        return Err(format!("recipe warm-up {} is too long", recipe.warmup));
    }
    Ok(())
}

/// What a checkpoint holds, borrowed from the trainer (or a test): what [`encode`] and [`save`]
/// write. [`CheckpointRef::new`] and struct update syntax fill in the rest:
/// `CheckpointRef { epochs_done: 3, ..CheckpointRef::new(&hyper, &recipe, &params) }`.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointRef<'a> {
    pub hyper: &'a Hyper,
    pub recipe: &'a Recipe,
    /// Epochs finished; training resumes at this (0-based) epoch.
    pub epochs_done: usize,
    /// State of the training random generator after `epochs_done` epochs.
    pub rng_state: u64,
    /// All parameters, in `parameters.raw` order.
    pub params: &'a [f32],
    /// Momentum buffer, same layout as `params`; empty when training without momentum.
    pub velocity: &'a [f32],
    /// One record per finished epoch.
    pub history: &'a [EpochRecord],
    /// Limit and data of the run: `Some` writes version 2, `None` version 1.
    pub run: Option<&'a RunRecord>,
    /// Validation and best epoch: `Some` (with a run record) writes version 3.
    pub selection: Option<&'a Selection>,
}

impl<'a> CheckpointRef<'a> {
    /// A checkpoint of `params` before any epoch: no momentum, no history, no run record
    /// (version 1), random generator state 0.
    pub fn new(hyper: &'a Hyper, recipe: &'a Recipe, params: &'a [f32]) -> Self {
        Self {
            hyper,
            recipe,
            epochs_done: 0,
            rng_state: 0,
            params,
            velocity: &[],
            history: &[],
            run: None,
            selection: None,
        }
    }
}

impl Checkpoint {
    /// This checkpoint, borrowed, as [`save`] and [`encode`] take it.
    pub fn view(&self) -> CheckpointRef<'_> {
        CheckpointRef {
            hyper: &self.hyper,
            recipe: &self.recipe,
            epochs_done: self.epochs_done,
            rng_state: self.rng_state,
            params: &self.params,
            velocity: &self.velocity,
            history: &self.history,
            run: self.run.as_ref(),
            selection: self.selection.as_ref(),
        }
    }
}

/// A little-endian writer, the counterpart of [`Reader`].
struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.bytes(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }
    fn blob_id(&mut self, id: &BlobId) {
        self.u32(id.header_crc);
        self.u32(id.payload_crc);
        self.u64(id.count);
    }
    /// The CRC-32 of everything written so far, appended.
    fn seal(&mut self) {
        let crc = crc32fast::hash(&self.0);
        self.u32(crc);
    }
}

/// The bytes of a checkpoint (see the module docs): version 2 with a run record, version 1
/// without; [`save`] writes exactly these.
pub fn encode(c: &CheckpointRef) -> Result<Vec<u8>, String> {
    let (hyper, recipe, params, velocity) = (c.hyper, c.recipe, c.params, c.velocity);
    validate(hyper, recipe, params.len(), velocity.len())?;
    if c.selection.is_some() && c.run.is_none() {
        return Err("a selection record needs a run record".into());
    }
    let run_len = if c.run.is_some() { RUN_LEN } else { 0 };
    let (sel_len, rec_len) = match c.selection {
        Some(_) => (SELECT_LEN, RECORD_LEN_V3),
        None => (0, RECORD_LEN),
    };
    let total = HEADER_LEN
        + run_len
        + sel_len
        + rec_len * c.history.len()
        + 4 * (params.len() + velocity.len())
        + 4;
    let mut w = Writer(Vec::with_capacity(total));
    w.bytes(&MAGIC);
    w.u32(match (c.run, c.selection) {
        (_, Some(_)) => VERSION_SELECT,
        (Some(_), None) => VERSION_RUN,
        (None, None) => VERSION,
    });
    w.u32(HEADER_LEN as u32);
    w.u64(hyper.image as u64);
    for width in hyper.widths {
        w.u64(width as u64);
    }
    w.u64(hyper.fc1 as u64);
    w.u64(hyper.epochs as u64);
    w.u64(hyper.batch as u64);
    w.f32(hyper.lr);
    w.f32(recipe.label_smoothing);
    w.u64(hyper.seed);
    w.u64(hyper.threads as u64);
    w.u8(recipe.shuffle as u8);
    w.u8(recipe.flips as u8);
    w.u8(schedule_code(recipe.schedule));
    w.u8(if recipe.crops { recipe.crop_area } else { 0 });
    w.f32(recipe.momentum);
    w.f32(recipe.weight_decay);
    w.f32(recipe.dropout);
    w.u64(c.epochs_done as u64);
    w.u64(c.rng_state);
    w.u64(params.len() as u64);
    w.u64(velocity.len() as u64);
    w.u64(c.history.len() as u64);
    w.u32(recipe.warmup as u32);
    debug_assert_eq!(w.0.len(), HEADER_LEN - 4);
    w.seal();
    if let Some(run) = c.run {
        w.u64(run.limit.unwrap_or(u64::MAX));
        w.blob_id(&run.train);
        w.blob_id(&run.test.unwrap_or(NO_BLOB));
    }
    if let Some(sel) = c.selection {
        let (kind, fraction, blob) = match sel.val {
            Validation::Fraction(f) => (1, f, NO_BLOB),
            Validation::Blob(id) => (2, 0.0, id),
        };
        w.u32(kind);
        w.u32(sel.save_best as u32 | (sel.tta as u32) << 1);
        w.f64(fraction);
        w.blob_id(&blob);
        let (epoch, acc) = sel.best.unwrap_or((0, 0.0));
        w.u64(epoch as u64);
        w.f64(acc);
    }
    for r in c.history {
        w.u64(r.epoch as u64);
        w.f64(r.train_loss);
        w.f64(r.test_accuracy.unwrap_or(0.0));
        w.f64(r.test_loss.unwrap_or(0.0));
        w.f64(r.samples_per_s);
        w.f64(r.elapsed_s);
        w.f32(r.lr);
        let flags = r.test_accuracy.is_some() as u32 | (r.test_loss.is_some() as u32) << 1;
        if c.selection.is_some() {
            let val = (r.val_accuracy.is_some() as u32) << 2 | (r.val_loss.is_some() as u32) << 3;
            w.u32(flags | val);
            w.f64(r.val_accuracy.unwrap_or(0.0));
            w.f64(r.val_loss.unwrap_or(0.0));
        } else {
            w.u32(flags);
        }
    }
    for &v in params.iter().chain(velocity) {
        w.f32(v);
    }
    w.seal();
    debug_assert_eq!(w.0.len(), total);
    Ok(w.0)
}

/// Writes a checkpoint to `path` atomically (temporary file in the same directory, fsync,
/// rename). Refuses contents that [`load`] would refuse (counts that do not fit `hyper`).
pub fn save(path: &Path, c: &CheckpointRef) -> Result<(), String> {
    let bytes =
        encode(c).map_err(|e| format!("{}: will not write checkpoint: {e}", path.display()))?;
    write_atomic(path, &bytes)?;
    // Make the rename itself durable (best effort: not every platform can fsync a directory).
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads and checks a checkpoint. Every problem is an `Err` naming the file and what is wrong.
pub fn load(path: &Path) -> Result<Checkpoint, String> {
    let meta = crate::guard::metadata_of(path, "checkpoint file")?;
    if !meta.is_file() {
        // A device or a pipe could be endless.
        return Err(format!(
            "{}: is not a regular file, expected a checkpoint file",
            path.display()
        ));
    }
    // Read through a descriptor that is checked again: a FIFO swapped in now cannot block.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut crate::guard::open_regular(path, "the checkpoint")?,
        &mut bytes,
    )
    .map_err(|e| format!("{}: cannot read checkpoint: {e}", path.display()))?;
    decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A bounds-checked little-endian reader over a slice whose length was checked beforehand.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let a: [u8; N] = self.b[self.at..self.at + N]
            .try_into()
            .expect("length checked");
        self.at += N;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
    fn blob_id(&mut self) -> BlobId {
        BlobId {
            header_crc: self.u32(),
            payload_crc: self.u32(),
            count: self.u64(),
        }
    }
    /// A stored count or size as `usize`, refusing values this machine cannot hold.
    fn size(&mut self, what: &str) -> Result<usize, String> {
        let v = self.u64();
        usize::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
    }
}

/// Parses checkpoint bytes (see the module docs). Errors say what is wrong, without the file.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.is_empty() {
        return Err("empty file, not a catdog checkpoint".into());
    }
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err("not a catdog checkpoint (wrong magic bytes)".into());
    }
    if bytes.len() < 12 {
        return Err(format!(
            "truncated checkpoint: {} bytes, too short to hold the format version",
            bytes.len()
        ));
    }
    let mut r = Reader { b: bytes, at: 8 };
    let version = r.u32();
    if ![VERSION, VERSION_RUN, VERSION_SELECT].contains(&version) {
        return Err(format!(
            "unsupported checkpoint format version {version} (this build reads versions {VERSION} to {VERSION_SELECT})"
        ));
    }
    let run_len = if version >= VERSION_RUN { RUN_LEN } else { 0 };
    let (sel_len, rec_len) = if version == VERSION_SELECT {
        (SELECT_LEN, RECORD_LEN_V3)
    } else {
        (0, RECORD_LEN)
    };
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "truncated checkpoint: expected at least {HEADER_LEN} bytes of header, found {} bytes",
            bytes.len()
        ));
    }
    let stored_hcrc = u32::from_le_bytes(bytes[HEADER_LEN - 4..HEADER_LEN].try_into().unwrap());
    if crc32fast::hash(&bytes[..HEADER_LEN - 4]) != stored_hcrc {
        return Err("damaged checkpoint: header checksum mismatch".into());
    }
    let header_len = r.u32();
    if header_len as usize != HEADER_LEN {
        return Err(format!(
            "damaged checkpoint: header length {header_len}, expected {HEADER_LEN}"
        ));
    }
    let image = r.size("image size")?;
    let widths = [
        r.size("conv1 width")?,
        r.size("conv2 width")?,
        r.size("conv3 width")?,
    ];
    let fc1 = r.size("fc1 width")?;
    let epochs = r.size("epochs")?;
    let batch = r.size("batch size")?;
    let lr = r.f32();
    let label_smoothing = r.f32();
    let seed = r.u64();
    let threads = r.size("threads")?;
    let hyper = Hyper {
        image,
        widths,
        fc1,
        epochs,
        batch,
        lr,
        seed,
        threads,
    };
    let shuffle = r.u8();
    let flips = r.u8();
    let sched = r.u8();
    let crops = r.u8();
    if shuffle > 1 || flips > 1 || (2..MIN_CROP_AREA_PCT).contains(&crops) || crops > 100 {
        return Err(format!(
            "damaged checkpoint: shuffle/flips/crops bytes are {shuffle}/{flips}/{crops}, \
             expected 0 or 1, 0 or 1, and 0, 1 or {MIN_CROP_AREA_PCT}-100"
        ));
    }
    let schedule = schedule_from(sched)
        .ok_or_else(|| format!("unknown learning-rate schedule code {sched}"))?;
    let mut recipe = Recipe {
        shuffle: shuffle == 1,
        flips: flips == 1,
        momentum: r.f32(),
        weight_decay: r.f32(),
        dropout: r.f32(),
        schedule,
        crops: crops != 0,
        crop_area: match crops {
            0 => CROP_AREA_PCT, // crops off: the default, never used
            1 => LEGACY_CROP_AREA_PCT,
            pct => pct,
        },
        label_smoothing,
        warmup: 0, // read below
    };
    let epochs_done = r.size("epochs done")?;
    let rng_state = r.u64();
    let p = r.size("parameter count")?;
    let v = r.size("velocity count")?;
    let h = r.size("history count")?;
    recipe.warmup = r.u32() as usize;
    r.at = HEADER_LEN; // reserved word and header CRC (checked above)
                       // Sizes before anything is allocated from a stored count.
    let expected = (|| {
        let arrays = p.checked_add(v)?.checked_mul(4)?;
        let hist = h.checked_mul(rec_len)?;
        (HEADER_LEN + run_len + sel_len)
            .checked_add(hist)?
            .checked_add(arrays)?
            .checked_add(4)
    })();
    match expected {
        Some(e) if e == bytes.len() => {}
        Some(e) if e > bytes.len() => {
            return Err(format!(
                "truncated checkpoint: expected {e} bytes ({p} parameters, {v} momentum values, \
                 {h} history records), found {} bytes",
                bytes.len()
            ))
        }
        Some(e) => {
            return Err(format!(
                "damaged checkpoint: expected {e} bytes ({p} parameters, {v} momentum values, \
                 {h} history records), found {} bytes (extra data at the end)",
                bytes.len()
            ))
        }
        None => {
            return Err(format!(
                "damaged checkpoint: counts {p}/{v}/{h} do not fit in a file"
            ))
        }
    }
    let body = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body..].try_into().unwrap());
    if crc32fast::hash(&bytes[..body]) != stored {
        return Err(
            "damaged checkpoint: checksum mismatch (the file was altered or only partly written)"
                .into(),
        );
    }
    validate(&hyper, &recipe, p, v)?;
    let run = (run_len > 0).then(|| {
        let limit = r.u64();
        RunRecord {
            limit: (limit != u64::MAX).then_some(limit),
            train: r.blob_id(),
            test: Some(r.blob_id()).filter(|id| *id != NO_BLOB),
        }
    });
    let selection = if sel_len > 0 {
        let kind = r.u32();
        let flags = r.u32();
        let fraction = r.f64();
        let blob = r.blob_id();
        let best_epoch = r.size("best epoch")?;
        let best_acc = r.f64();
        let val = match kind {
            1 if fraction > 0.0 && fraction < 1.0 => Validation::Fraction(fraction),
            2 => Validation::Blob(blob),
            _ => {
                return Err(format!(
                "damaged checkpoint: validation source {kind} (fraction {fraction}) is not valid"
            ))
            }
        };
        if flags > 3 || best_epoch > epochs_done || !best_acc.is_finite() {
            return Err(format!(
                "damaged checkpoint: the best epoch record ({best_epoch}, accuracy {best_acc}, \
                 flags {flags}) does not fit a run of {epochs_done} epochs"
            ));
        }
        Some(Selection {
            val,
            tta: flags & 2 != 0,
            save_best: flags & 1 != 0,
            best: (best_epoch > 0).then_some((best_epoch, best_acc)),
        })
    } else {
        None
    };
    let mut history = Vec::with_capacity(h);
    for _ in 0..h {
        let epoch = r.size("history epoch")?;
        let train_loss = r.f64();
        let acc = r.f64();
        let loss = r.f64();
        let samples_per_s = r.f64();
        let elapsed_s = r.f64();
        let lr = r.f32();
        let flags = r.u32();
        let (val_acc, val_loss) = if sel_len > 0 {
            (r.f64(), r.f64())
        } else {
            (0.0, 0.0)
        };
        if flags > if sel_len > 0 { 15 } else { 3 } {
            return Err(format!("history record flags {flags} are not valid"));
        }
        history.push(EpochRecord {
            epoch,
            train_loss,
            test_accuracy: (flags & 1 != 0).then_some(acc),
            test_loss: (flags & 2 != 0).then_some(loss),
            samples_per_s,
            elapsed_s,
            lr,
            val_accuracy: (flags & 4 != 0).then_some(val_acc),
            val_loss: (flags & 8 != 0).then_some(val_loss),
        });
    }
    let floats = |r: &mut Reader, n: usize| -> Vec<f32> {
        let s = &r.b[r.at..r.at + 4 * n];
        r.at += 4 * n;
        s.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let params = floats(&mut r, p);
    let velocity = floats(&mut r, v);
    debug_assert_eq!(r.at, body);
    // A valid checksum says the file is as written, not that training was sane: a NaN or an
    // infinity would make every prediction meaningless (as in parameters.raw, refused).
    for (what, vals) in [("parameter", &params), ("momentum value", &velocity)] {
        if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
            let tensor = if what == "parameter" {
                format!(
                    " (in {})",
                    crate::parameters::tensor_of(&hyper.shapes()?, i)
                )
            } else {
                String::new()
            };
            return Err(format!(
                "{what} {i}{tensor} is {}, not a finite number: this checkpoint cannot be used",
                vals[i]
            ));
        }
    }
    if let Some(last) = history.last() {
        if last.epoch != epochs_done || history.len() > epochs_done {
            return Err(format!(
                "damaged checkpoint: it says {epochs_done} epochs are done, but its history has \
                 {} records ending at epoch {}",
                history.len(),
                last.epoch
            ));
        }
    }
    Ok(Checkpoint {
        hyper,
        recipe,
        epochs_done,
        rng_state,
        params,
        velocity,
        history,
        run,
        selection,
    })
}

/// Checks that a run with `hyper` can continue from `ck`: the network (image, widths, fc1) and
/// the batch size must match. `Err` names every field that differs, with both values. Other
/// fields (epochs, lr, seed, threads) may change on resume.
pub fn check_compatible(ck: &Checkpoint, hyper: &Hyper) -> Result<(), String> {
    let c = &ck.hyper;
    let mut diffs = Vec::new();
    if c.image != hyper.image {
        diffs.push(format!(
            "image: checkpoint {}, requested {}",
            c.image, hyper.image
        ));
    }
    if c.widths != hyper.widths {
        let f = |w: [usize; 3]| format!("{}/{}/{}", w[0], w[1], w[2]);
        diffs.push(format!(
            "widths: checkpoint {}, requested {}",
            f(c.widths),
            f(hyper.widths)
        ));
    }
    if c.fc1 != hyper.fc1 {
        diffs.push(format!(
            "fc1: checkpoint {}, requested {}",
            c.fc1, hyper.fc1
        ));
    }
    if c.batch != hyper.batch {
        diffs.push(format!(
            "batch: checkpoint {}, requested {}",
            c.batch, hyper.batch
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cannot resume: the checkpoint was made with different settings ({})",
            diffs.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_docs() {
        let h = crate::testing::tiny_hyper();
        let n = h.shapes().unwrap().param_count();
        let (recipe, params) = (Recipe::improved(), vec![0.5; n]);
        let c = CheckpointRef {
            epochs_done: 3,
            rng_state: 7,
            ..CheckpointRef::new(&h, &recipe, &params)
        };
        let b = encode(&c).unwrap();
        assert_eq!(b.len(), HEADER_LEN + 4 * n + 4);
        assert_eq!(&b[..8], b"CATDOGCK");
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 8);
        assert_eq!(b[98], 1); // cosine
        assert_eq!(u64::from_le_bytes(b[112..120].try_into().unwrap()), 3);
        assert_eq!(
            u64::from_le_bytes(b[128..136].try_into().unwrap()),
            n as u64
        );
        assert_eq!(decode(&b).unwrap().epochs_done, 3);
    }
}
