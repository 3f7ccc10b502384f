//! Checkpoints: exact round trips, a clean refusal for every kind of bad file, atomic saves.

mod common;
use catdog::augment::{CROP_AREA_PCT, LEGACY_CROP_AREA_PCT};
use catdog::checkpoint::{
    self, check_compatible, Checkpoint, CheckpointRef, HEADER_LEN, RECORD_LEN,
};
use catdog::config::{Hyper, Recipe, Schedule};
use catdog::metrics::EpochRecord;
use common::TempDir;
use std::path::Path;

fn small_hyper() -> Hyper {
    Hyper {
        image: 16,
        widths: [16, 32, 16],
        fc1: 32,
        epochs: 7,
        batch: 5,
        lr: 0.0375,
        seed: 0xDEAD_BEEF_1234,
        threads: 3,
    }
}

fn history() -> Vec<EpochRecord> {
    (1..=4)
        .map(|e| EpochRecord {
            epoch: e,
            train_loss: 0.7 / e as f64,
            test_accuracy: (e % 2 == 0).then_some(0.5 + e as f64 / 10.0),
            test_loss: (e == 4).then_some(0.41),
            samples_per_s: 100.0 + e as f64,
            elapsed_s: 12.5 * e as f64,
            lr: 0.01 * e as f32,
            val_accuracy: None,
            val_loss: None,
        })
        .collect()
}

/// Distinct, awkward float values (negative zero, subnormals, large) so any mix-up shows.
fn values(n: usize, salt: u32) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 5 {
            0 => -0.0,
            1 => f32::from_bits(1 + i as u32 + salt),
            _ => (i as f32 * 0.37 + salt as f32).sin() * 1e3,
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Saves a checkpoint of [`small_hyper`] and the improved recipe after `epochs_done` epochs,
/// with `rng_state`, `params`, `velocity` and `history`.
fn save_at(
    path: &Path,
    (epochs_done, rng_state): (usize, u64),
    params: &[f32],
    velocity: &[f32],
    history: &[EpochRecord],
) -> Result<(), String> {
    let (h, recipe) = (small_hyper(), Recipe::improved());
    let c = CheckpointRef {
        epochs_done,
        rng_state,
        velocity,
        history,
        ..CheckpointRef::new(&h, &recipe, params)
    };
    checkpoint::save(path, &c)
}

/// Saves a valid small checkpoint and returns its bytes.
fn save_small(path: &Path, momentum: bool) -> Vec<u8> {
    let n = small_hyper().shapes().unwrap().param_count();
    let vel = if momentum { values(n, 9) } else { Vec::new() };
    save_at(
        path,
        (4, 0x0123_4567_89AB_CDEF),
        &values(n, 1),
        &vel,
        &history(),
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

/// A temporary folder `tag` holding a [`save_small`] checkpoint without momentum, `NAME`; the
/// path and the checkpoint as loaded.
fn small_saved(tag: &str, name: &str) -> (TempDir, std::path::PathBuf, Checkpoint) {
    let d = TempDir::new("ck", tag);
    let p = d.path(name);
    save_small(&p, false);
    let ck = checkpoint::load(&p).unwrap();
    (d, p, ck)
}

/// Recomputes both checksums after a deliberate edit, so that the check under test is the one
/// that fires.
fn reseal(b: &mut [u8]) {
    let hc = crc32fast::hash(&b[..HEADER_LEN - 4]);
    b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&hc.to_le_bytes());
    let n = b.len() - 4;
    let c = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
}

fn load_err(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    let e = checkpoint::load(path).expect_err("a bad checkpoint was accepted");
    assert!(
        e.contains(&path.display().to_string()),
        "the error does not name the file: {e}"
    );
    e
}

#[test]
fn round_trip_is_exact_with_and_without_momentum() {
    let d = TempDir::new("ck", "round");
    for momentum in [false, true] {
        let h = small_hyper();
        let n = h.shapes().unwrap().param_count();
        let p = d.path("a.ck");
        let recipe = Recipe {
            shuffle: false,
            flips: true,
            momentum: if momentum { 0.9 } else { 0.0 },
            weight_decay: 1e-5,
            dropout: 0.25,
            schedule: Schedule::Constant,
            crops: momentum,
            // Without crops the smallest crop is not stored and reads back as the default.
            crop_area: if momentum { 72 } else { CROP_AREA_PCT },
            label_smoothing: if momentum { 0.1 } else { 0.0 },
            warmup: if momentum { 3 } else { 0 },
        };
        let params = values(n, 1);
        let vel = if momentum { values(n, 2) } else { vec![] };
        let hist = history();
        let c = CheckpointRef {
            epochs_done: 4,
            rng_state: u64::MAX - 3,
            velocity: &vel,
            history: &hist,
            ..CheckpointRef::new(&h, &recipe, &params)
        };
        checkpoint::save(&p, &c).unwrap();
        let ck: Checkpoint = checkpoint::load(&p).unwrap();
        assert_eq!(ck.hyper, h);
        assert_eq!(ck.hyper.lr.to_bits(), h.lr.to_bits());
        assert_eq!(ck.recipe, recipe);
        assert_eq!(ck.epochs_done, 4);
        assert_eq!(ck.rng_state, u64::MAX - 3);
        assert_eq!(bits(&ck.params), bits(&params));
        assert_eq!(bits(&ck.velocity), bits(&vel));
        assert_eq!(ck.history, history());
        assert_eq!(ck.history[0].test_accuracy, None);
        assert_eq!(ck.history[3].test_loss, Some(0.41));
        // The documented size formula.
        let len = std::fs::metadata(&p).unwrap().len() as usize;
        assert_eq!(len, HEADER_LEN + RECORD_LEN * 4 + 4 * (n + vel.len()) + 4);
    }
}

#[test]
fn round_trip_of_the_original_network() {
    let d = TempDir::new("ck", "orig");
    let h = Hyper::default();
    let n = h.shapes().unwrap().param_count();
    assert_eq!(n, 4_287_809);
    let params = values(n, 3);
    let p = d.path("orig.ck");
    let recipe = Recipe::faithful(false);
    let c = CheckpointRef {
        rng_state: 1,
        ..CheckpointRef::new(&h, &recipe, &params)
    };
    checkpoint::save(&p, &c).unwrap();
    let ck = checkpoint::load(&p).unwrap();
    assert_eq!(ck.hyper, h);
    assert_eq!(ck.recipe, Recipe::faithful(false));
    assert!(ck.velocity.is_empty() && ck.history.is_empty());
    assert!(bits(&ck.params) == bits(&params));
}

#[test]
fn save_refuses_counts_that_do_not_fit_the_network() {
    let d = TempDir::new("ck", "savebad");
    let h = small_hyper();
    let n = h.shapes().unwrap().param_count();
    let p = d.path("x.ck");
    let r = Recipe::faithful(true);
    let (short, params) = (vec![0.0; n - 1], vec![0.0; n]);
    let e = checkpoint::save(&p, &CheckpointRef::new(&h, &r, &short)).unwrap_err();
    assert!(
        e.contains(&format!("{}", n - 1)) && e.contains(&format!("{n}")),
        "{e}"
    );
    let c = CheckpointRef {
        velocity: &[1.0; 3],
        ..CheckpointRef::new(&h, &r, &params)
    };
    let e = checkpoint::save(&p, &c).unwrap_err();
    assert!(e.contains("momentum"), "{e}");
    let bad = Hyper {
        image: 12,
        ..small_hyper()
    };
    let e = checkpoint::save(&p, &CheckpointRef::new(&bad, &r, &params)).unwrap_err();
    assert!(e.contains("multiple of 8"), "{e}");
    assert!(!p.exists(), "a refused save left a file");
}

#[test]
fn a_flipped_byte_anywhere_is_reported_as_damage() {
    let d = TempDir::new("ck", "flip");
    let p = d.path("a.ck");
    let good = save_small(&p, true);
    let mid = good.len() / 2;
    // The middle of the parameters, a history record, a header count, the final CRC.
    for at in [mid, HEADER_LEN + 3, 130, 20, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        let e = load_err(&d.path("bad.ck"), &b);
        assert!(e.contains("damaged"), "flip at {at}: {e}");
    }
}

#[test]
fn truncation_at_any_offset_is_a_clean_error() {
    let d = TempDir::new("ck", "trunc");
    let p = d.path("a.ck");
    let good = save_small(&p, false);
    let bad = d.path("t.ck");
    let mut offsets: Vec<usize> = (0..HEADER_LEN + 80).collect();
    offsets.extend((HEADER_LEN + 80..good.len()).step_by(97));
    offsets.push(good.len() - 1);
    for cut in offsets {
        let e = load_err(&bad, &good[..cut]);
        if cut >= HEADER_LEN {
            assert!(
                e.contains("truncated")
                    && e.contains(&format!("expected {}", good.len()))
                    && e.contains(&format!("found {cut}")),
                "cut at {cut}: {e}"
            );
        } else if cut >= 12 {
            assert!(e.contains("truncated"), "cut at {cut}: {e}");
        } else if cut == 0 {
            assert!(e.contains("empty"), "{e}");
        }
    }
    // Extra bytes at the end are refused too.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 8]);
    let e = load_err(&bad, &long);
    assert!(e.contains("extra"), "{e}");
}

#[test]
fn foreign_empty_and_directory_paths_are_refused() {
    let d = TempDir::new("ck", "foreign");
    let f = d.path("f.ck");
    let e = load_err(
        &f,
        b"\x89PNG\r\n\x1a\n and then some more bytes of an image file....",
    );
    assert!(e.contains("not a catdog checkpoint"), "{e}");
    let e = load_err(&f, &[0u8; 4096]);
    assert!(e.contains("not a catdog checkpoint"), "{e}");
    let e = load_err(&f, b"");
    assert!(e.contains("empty"), "{e}");
    let e = checkpoint::load(&d.0).unwrap_err();
    assert!(e.contains("directory"), "{e}");
    if Path::new("/dev/zero").exists() {
        let e = checkpoint::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
    let e = checkpoint::load(&d.path("missing.ck")).unwrap_err();
    assert!(e.contains("missing.ck") && e.contains("cannot read"), "{e}");
}

#[test]
fn unsupported_version_is_named() {
    let d = TempDir::new("ck", "version");
    let mut b = save_small(&d.path("a.ck"), false);
    b[8..12].copy_from_slice(&4u32.to_le_bytes()); // 1, 2 and 3 are read
    reseal(&mut b);
    let e = load_err(&d.path("v.ck"), &b);
    assert!(e.contains("version 4") && e.contains("unsupported"), "{e}");
}

#[test]
fn bad_contents_with_valid_checksums_are_refused() {
    let d = TempDir::new("ck", "contents");
    let good = save_small(&d.path("a.ck"), true);
    let bad = d.path("b.ck");
    let put = |b: &mut Vec<u8>, at: usize, v: u64| {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        reseal(b);
    };
    // Hyperparameters that Hyper::shapes() rejects.
    let mut b = good.clone();
    put(&mut b, 16, 12); // image 12
    let e = load_err(&bad, &b);
    assert!(e.contains("image size 12"), "{e}");
    let mut b = good.clone();
    put(&mut b, 32, 40); // conv2 width 40
    let e = load_err(&bad, &b);
    assert!(e.contains("conv2 width 40"), "{e}");
    // A different, valid network: the parameter count no longer matches it.
    let mut b = good.clone();
    put(&mut b, 48, 16); // fc1 32 -> 16
    let e = load_err(&bad, &b);
    assert!(e.contains("parameters") && e.contains("fc1 16"), "{e}");
    // An unknown schedule code.
    let mut b = good.clone();
    b[98] = 7;
    reseal(&mut b);
    let e = load_err(&bad, &b);
    assert!(e.contains("schedule"), "{e}");
    // The crops byte: 1 (files before --crop-area) reads as crops of at least 35%; 2-4 and
    // above 100 are not percentages a run can have.
    let mut b = good.clone();
    b[99] = 1;
    reseal(&mut b);
    std::fs::write(&bad, &b).unwrap();
    let r = checkpoint::load(&bad).unwrap().recipe;
    assert_eq!((r.crops, r.crop_area), (true, LEGACY_CROP_AREA_PCT));
    for v in [2, 4, 101, 255] {
        let mut b = good.clone();
        b[99] = v;
        reseal(&mut b);
        let e = load_err(&bad, &b);
        assert!(e.contains("crops"), "byte {v}: {e}");
    }
}

#[test]
fn count_mismatches_are_refused_without_huge_allocations() {
    let d = TempDir::new("ck", "counts");
    let good = save_small(&d.path("a.ck"), true);
    let n = small_hyper().shapes().unwrap().param_count();
    let bad = d.path("b.ck");
    // Velocity count that is neither 0 nor n, with the file length made consistent.
    let mut b = good[..good.len() - 4 - 4].to_vec(); // drop one velocity value and the CRC
    b[136..144].copy_from_slice(&((n - 1) as u64).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    reseal(&mut b);
    let e = load_err(&bad, &b);
    assert!(e.contains("momentum values"), "{e}");
    // Enormous counts: refused from the file size, before anything is allocated.
    for (at, v) in [(128, u64::MAX), (136, 1 << 60), (144, u64::MAX / 2)] {
        let mut b = good.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        reseal(&mut b);
        let e = load_err(&bad, &b);
        assert!(
            e.contains("truncated") || e.contains("do not fit") || e.contains("out of range"),
            "count {v} at {at}: {e}"
        );
    }
}

#[test]
fn saving_over_an_existing_checkpoint_is_atomic_and_leaves_no_temp_file() {
    let (d, p, first) = small_saved("atomic", "run.ck");
    let n = small_hyper().shapes().unwrap().param_count();
    let params = values(n, 77);
    let mut hist = history();
    hist.push(EpochRecord {
        epoch: 5,
        ..hist[3].clone()
    });
    save_at(&p, (5, 99), &params, &values(n, 78), &hist).unwrap();
    let second = checkpoint::load(&p).unwrap();
    assert_eq!(second.epochs_done, 5);
    assert_eq!(second.history.len(), 5);
    assert_eq!(bits(&second.params), bits(&params));
    assert_ne!(bits(&first.params), bits(&second.params));
    let names: Vec<String> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["run.ck".to_string()], "left behind: {names:?}");
    // A save that fails (the directory is gone) leaves no file and says why.
    let gone = d.path("no/such/dir/run.ck");
    let e = save_at(&gone, (5, 99), &params, &[], &hist).unwrap_err();
    assert!(e.contains("cannot write"), "{e}");
}

#[test]
fn check_compatible_names_every_differing_field() {
    let (_d, _, ck) = small_saved("compat", "a.ck");
    // epochs, lr, seed and threads may change on resume.
    let same = Hyper {
        epochs: 20,
        lr: 0.5,
        seed: 1,
        threads: 8,
        ..small_hyper()
    };
    assert_eq!(check_compatible(&ck, &same), Ok(()));
    let e = check_compatible(
        &ck,
        &Hyper {
            image: 32,
            ..small_hyper()
        },
    )
    .unwrap_err();
    assert!(e.contains("image: checkpoint 16, requested 32"), "{e}");
    let e = check_compatible(
        &ck,
        &Hyper {
            widths: [16, 16, 16],
            batch: 16,
            fc1: 64,
            ..small_hyper()
        },
    )
    .unwrap_err();
    assert!(
        e.contains("widths: checkpoint 16/32/16, requested 16/16/16"),
        "{e}"
    );
    assert!(e.contains("fc1: checkpoint 32, requested 64"), "{e}");
    assert!(e.contains("batch: checkpoint 5, requested 16"), "{e}");
    assert!(!e.contains("image"), "{e}");
}

#[test]
fn version_3_round_trips_the_selection_and_validation_history() {
    use catdog::checkpoint::{BlobId, RunRecord, Selection, Validation, RECORD_LEN_V3, RUN_LEN};
    let d = TempDir::new("ck", "v3");
    let h = small_hyper();
    let n = h.shapes().unwrap().param_count();
    let (recipe, params) = (Recipe::faithful(true), values(n, 3));
    let hist: Vec<EpochRecord> = history()
        .into_iter()
        .map(|r| EpochRecord {
            val_accuracy: (r.epoch != 2).then_some(0.25 * r.epoch as f64),
            val_loss: Some(1.0 / r.epoch as f64),
            ..r
        })
        .collect();
    let id = |c| BlobId {
        header_crc: c,
        payload_crc: c + 1,
        count: 10,
    };
    // The second run was trained with --no-test: no test blob id, stored as zeros; it
    // validates with --val-tta.
    for (test, val, tta) in [
        (Some(id(2)), Validation::Fraction(0.125), false),
        (None, Validation::Blob(id(5)), true),
    ] {
        let run = RunRecord {
            limit: None,
            train: id(1),
            test,
        };
        let sel = Selection {
            val,
            tta,
            save_best: true,
            best: Some((3, 0.75)),
        };
        let c = CheckpointRef {
            epochs_done: 4,
            history: &hist,
            run: Some(&run),
            selection: Some(&sel),
            ..CheckpointRef::new(&h, &recipe, &params)
        };
        let p = d.path("v3.ck");
        checkpoint::save(&p, &c).unwrap();
        let ck = checkpoint::load(&p).unwrap();
        assert_eq!((ck.selection, ck.run), (Some(sel), Some(run)));
        assert_eq!(ck.history, hist);
        let len = std::fs::metadata(&p).unwrap().len() as usize;
        let select_len = catdog::checkpoint::SELECT_LEN;
        assert_eq!(
            len,
            HEADER_LEN + RUN_LEN + select_len + RECORD_LEN_V3 * 4 + 4 * n + 4
        );
        // A best epoch past the epochs done is damage.
        let bad = Selection {
            best: Some((5, 0.5)),
            ..sel
        };
        let b = checkpoint::encode(&CheckpointRef {
            selection: Some(&bad),
            ..c
        })
        .unwrap();
        assert!(checkpoint::decode(&b).unwrap_err().contains("best epoch"));
    }
}
