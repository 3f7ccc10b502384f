//! `model export` and `model import`: the ONNX graph gives in ONNX Runtime the P(dog) that
//! `model predict` gives for the same photos, and passes `onnx.checker`; the safetensors file
//! holds the same tensors, in layouts an independent NumPy forward pass confirms, and comes back
//! through `model import` bit for bit; checkpoints and parameters.raw of both kernel tiers
//! export alike; bad input is one `error:` line and exit code 2.
//!
//! Needs `python3` with `onnx`, `onnxruntime` and `numpy` (`.ci/run` installs them): without
//! them the test fails, it does not skip.

mod common;
#[path = "common/http.rs"]
mod http;

use common::{assert_ok, assert_refused, tmp_with_blobs, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The network these tests train: not the default one, and an image size other than 128.
const NET: [&str; 4] = ["--widths", "16,32,16", "--fc1", "32"];
const IMAGE: usize = 32;

fn model(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_model"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A folder with a network trained on synthetic blobs (checkpoint `m.ckpt` and the same
/// parameters in `m.raw`), one trained with the original tier's kernels (`orig.raw`), and five
/// photos of assorted sizes and aspect ratios (`photos/*.png`).
fn trained() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp_with_blobs("export", IMAGE, (64, 1), (16, 2));
        let d = |f: &str| s(&dir.join(f));
        let (train, test) = (d("train.bin"), d("test.bin"));
        let mut args = vec!["train", "--train", &train];
        args.extend(["--test", &test, "--epochs", "2", "--batch-size", "8"]);
        args.extend(["--log-every", "0", "--lr", "0.02"]);
        args.extend(NET);
        let (ckpt, raw, orig) = (d("m.ckpt"), d("m.raw"), d("orig.raw"));
        let mut fast = args.clone();
        fast.extend(["--checkpoint", &ckpt, "--save", &raw]);
        assert_ok(&model(&fast));
        let mut original = args.clone();
        original.extend(["--kernels", "original", "--no-checkpoint", "--save", &orig]);
        assert_ok(&model(&original));
        std::fs::create_dir_all(dir.join("photos")).unwrap();
        for (i, (w, h, dog)) in [
            (30, 20, true),
            (20, 30, false),
            (25, 25, true),
            (64, 48, false),
            (17, 40, true),
        ]
        .into_iter()
        .enumerate()
        {
            let png = http::png(w, h, dog, i as u32 + 1);
            std::fs::write(dir.join(format!("photos/{i}.png")), png).unwrap();
        }
        dir
    })
}

/// Called at the end of each test: the last of the five to finish removes [`trained`]'s folder
/// (a failed test leaves it, to look at).
/// [`trained`] and a fresh folder `NAME` for one test's outputs.
fn trained_and_scratch(name: &str) -> (&'static PathBuf, TempDir) {
    (trained(), TempDir::new("export", name))
}

fn done() {
    static FINISHED: AtomicUsize = AtomicUsize::new(0);
    if FINISHED.fetch_add(1, Ordering::SeqCst) + 1 == 5 {
        std::fs::remove_dir_all(trained()).ok();
    }
}

fn photos(dir: &Path) -> Vec<String> {
    (0..5)
        .map(|i| s(&dir.join(format!("photos/{i}.png"))))
        .collect()
}

/// `path<TAB>P(dog)` of `model predict`'s lines.
fn predictions(o: &Output) -> Vec<(String, f64)> {
    assert_ok(o);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect()
}

/// `model predict`'s answers for the photos with parameters `params`.
fn predict_photos(dir: &Path, params: &str) -> Vec<(String, f64)> {
    let photos = photos(dir);
    let mut args = vec!["predict", "--params", params];
    args.extend(photos.iter().map(String::as_str));
    predictions(&model(&args))
}

/// `model export` of `params` (with the flags of `net`) to `NAME.onnx` and `NAME.safetensors` in
/// `out`, which must succeed; their paths.
fn export_both(out: &TempDir, name: &str, params: &str, net: &[&str]) -> (PathBuf, PathBuf) {
    let (onnx, st) = (
        out.path(&format!("{name}.onnx")),
        out.path(&format!("{name}.safetensors")),
    );
    let (o, t) = (s(&onnx), s(&st));
    let mut args = vec!["export", "--params", params];
    args.extend(net);
    args.extend(["--onnx", &o, "--safetensors", &t]);
    assert_ok(&model(&args));
    (onnx, st)
}

/// The flags a `parameters.raw` of the trained network needs: its image size and [`NET`].
fn raw_net() -> Vec<&'static str> {
    let mut net = vec!["--image", "32"];
    net.extend(NET);
    net
}

/// The photos packed at the network's size by the function `predict` packs them with (that of
/// `tools/pack photos`), and their pixels alone in a file for Python; the sources in blob order.
fn packed_pixels(dir: &Path, out: &Path) -> (PathBuf, PathBuf, Vec<String>) {
    let blob = out.join("photos.bin");
    let paths: Vec<PathBuf> = photos(dir).into_iter().map(PathBuf::from).collect();
    catdog::packer_cmd::pack_photos(&paths, &blob, IMAGE).unwrap();
    let b = catdog::dataset::open_blob(&blob, "test", false).unwrap();
    let mut pixels = Vec::new();
    let mut sources = Vec::new();
    for i in 0..b.len() {
        pixels.extend_from_slice(b.image(i));
        sources.push(b.source(i).to_string());
    }
    let pix = out.join("pixels.u8");
    std::fs::write(&pix, pixels).unwrap();
    (blob, pix, sources)
}

/// ONNX Runtime's and NumPy's P(dog) for the `n` images in `pixels` (tests/export_check.py).
fn python_check(onnx: &Path, st: &Path, pixels: &Path, n: usize) -> Vec<(f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_check.py");
    let o = Command::new("python3")
        .arg(&script)
        .args([s(onnx), s(st), s(pixels), n.to_string(), IMAGE.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 does not run ({e}): this test needs python3 with onnx, onnxruntime and numpy")
        });
    assert!(
        o.status.success(),
        "{} failed (it needs `pip install onnx onnxruntime numpy`):\n{}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let out: Vec<(f64, f64)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(out.len(), n, "{out:?}");
    out
}

/// Largest difference of ONNX Runtime's and NumPy's P(dog) (see [`python_check`] on `files`:
/// the ONNX file, the safetensors file and the packed pixels) from `model predict`'s, checked
/// against 1e-5; the probabilities must not all be alike (a network that says the same for every
/// photo would prove little).
fn assert_agree(predicted: &[(String, f64)], sources: &[String], files: [&Path; 3]) {
    assert_eq!(predicted.len(), sources.len());
    let [onnx, st, pixels] = files;
    let theirs = &python_check(onnx, st, pixels, sources.len());
    let (mut ort, mut np) = (0.0f64, 0.0f64);
    for (src, (o, n)) in sources.iter().zip(theirs) {
        let (_, p) = predicted.iter().find(|(s, _)| s == src).unwrap();
        ort = ort.max((o - p).abs());
        np = np.max((n - p).abs());
    }
    eprintln!("largest |P(dog) - predict's|: ONNX Runtime {ort:.2e}, NumPy {np:.2e}");
    assert!(
        ort <= 1e-5,
        "ONNX Runtime differs from predict by {ort}: {theirs:?} vs {predicted:?}"
    );
    assert!(
        np <= 1e-5,
        "NumPy differs from predict by {np}: {theirs:?} vs {predicted:?}"
    );
    let spread = predicted.iter().map(|p| p.1).fold(f64::NAN, f64::max)
        - predicted.iter().map(|p| p.1).fold(f64::NAN, f64::min);
    assert!(
        spread > 1e-3,
        "every photo gets the same P(dog): {predicted:?}"
    );
}

#[test]
fn onnx_runtime_and_numpy_give_predicts_probabilities() {
    let (dir, out) = trained_and_scratch("ort");
    let ckpt = s(&dir.join("m.ckpt"));
    let (onnx, st) = export_both(&out, "m", &ckpt, &[]);

    let predicted = predict_photos(dir, &ckpt);
    let (blob, pixels, sources) = packed_pixels(dir, &out.0);
    // The photos as predict packs them: the same P(dog) from the packed blob.
    let from_blob = predictions(&model(&["predict", "--params", &ckpt, &s(&blob)]));
    assert_eq!(from_blob.len(), 5);
    for (a, b) in from_blob.iter().zip(&sources) {
        assert_eq!(&a.0, b);
    }
    assert!(
        from_blob.iter().all(|p| predicted.contains(p)),
        "{from_blob:?} vs {predicted:?}"
    );

    assert_agree(&predicted, &sources, [&onnx, &st, &pixels]);
    done();
}

/// The README's ONNX Runtime example, run as printed on each photo, gives `predict`'s answers:
/// its Pillow preprocessing matches the packer's up to resize rounding.
#[test]
fn readme_example_classifies_like_predict() {
    let (dir, out) = trained_and_scratch("readme");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let readme = readme.unwrap();
    let start = readme
        .find("```python\nimport sys\n")
        .expect("README.md has the ONNX Runtime example");
    let code = &readme[start + "```python\n".len()..];
    let code = &code[..code.find("```").unwrap()];
    std::fs::write(out.path("classify.py"), code).unwrap();
    let onnx = out.path("m.onnx");
    let ckpt = s(&dir.join("m.ckpt"));
    assert_ok(&model(&["export", "--params", &ckpt, "--onnx", &s(&onnx)]));
    let predicted = predict_photos(dir, &ckpt);
    let mut worst = 0.0f64;
    for (photo, p) in &predicted {
        let o = Command::new("python3")
            .arg(out.path("classify.py"))
            .args([s(&onnx), photo.clone()])
            .output()
            .expect("python3 runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let line = String::from_utf8(o.stdout).unwrap();
        let f: Vec<&str> = line.trim_end().split('\t').collect();
        assert_eq!(f[0], photo);
        let theirs: f64 = f[1].parse().unwrap();
        assert_eq!(f[2], if theirs > 0.5 { "dog" } else { "cat" });
        worst = worst.max((theirs - p).abs());
    }
    eprintln!("README example: largest |P(dog) - predict's| {worst:.2e}");
    assert!(
        worst <= 5e-3,
        "the README's preprocessing is off by {worst}"
    );
    done();
}

#[test]
fn original_tier_parameters_export_alike() {
    let (dir, out) = trained_and_scratch("orig");
    let raw = s(&dir.join("orig.raw"));
    let (onnx, st) = export_both(&out, "o", &raw, &raw_net());
    let (blob, pixels, sources) = packed_pixels(dir, &out.0);
    let mut args = vec!["predict", "--params", &raw, "--kernels", "original"];
    args.extend(NET);
    let b = s(&blob);
    args.push(&b);
    let predicted = predictions(&model(&args));
    assert_agree(&predicted, &sources, [&onnx, &st, &pixels]);
    done();
}

#[test]
fn safetensors_round_trip_is_bit_for_bit() {
    let (dir, out) = trained_and_scratch("round");
    let (ckpt, raw) = (s(&dir.join("m.ckpt")), s(&dir.join("m.raw")));
    let f = |n: &str| s(&out.path(n));
    // The same network from its checkpoint and from parameters.raw: the same files.
    export_both(&out, "c", &ckpt, &[]);
    export_both(&out, "r", &raw, &raw_net());
    let read = |n: &str| std::fs::read(out.path(n)).unwrap();
    assert!(
        read("c.onnx") == read("r.onnx"),
        "ONNX from checkpoint and raw differ"
    );
    assert!(
        read("c.safetensors") == read("r.safetensors"),
        "safetensors from checkpoint and raw differ"
    );

    // Back in: the trainer's own parameters.raw, byte for byte, and the checkpoint's values.
    let o = model(&[
        "import",
        "--safetensors",
        &f("c.safetensors"),
        "--save",
        &f("back.raw"),
    ]);
    assert_ok(&o);
    let err = common::stderr_of(&o);
    assert!(
        err.contains("--widths 16,32,16 --fc1 32") && err.contains("32x32"),
        "{err}"
    );
    assert!(
        read("back.raw") == std::fs::read(&raw).unwrap(),
        "import changed the parameters"
    );
    let ck = catdog::checkpoint::load(&dir.join("m.ckpt")).unwrap();
    let ck_bytes: Vec<u8> = ck.params.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(read("back.raw") == ck_bytes);

    // And the imported network predicts as the original one.
    let blob = s(&dir.join("test.bin"));
    let back = f("back.raw");
    let mut args = vec!["predict", "--params", &back, &blob];
    args.extend(NET);
    let a = model(&args);
    let b = model(&["predict", "--params", &ckpt, &blob]);
    assert_ok(&a);
    assert_eq!(a.stdout, b.stdout);
    done();
}

#[test]
fn bad_input_is_one_error_line() {
    let (dir, out) = trained_and_scratch("bad");
    let f = |n: &str| s(&out.path(n));
    let (raw, ckpt) = (s(&dir.join("m.raw")), s(&dir.join("m.ckpt")));

    // parameters.raw of another network (default flags: widths 32,64,128, fc1 128).
    let o = model(&["export", "--params", &raw, "--onnx", &f("a.onnx")]);
    assert_refused(&o, &[&raw, "parameter file has", "bytes, expected"]);
    // A checkpoint for 32x32 images asked for 128x128.
    let o = model(&[
        "export",
        "--params",
        &ckpt,
        "--image",
        "128",
        "--onnx",
        &f("a.onnx"),
    ]);
    assert_refused(&o, &[&ckpt, "32x32"]);
    // Not a model at all; a folder; no such file.
    std::fs::write(out.path("notes.txt"), "hello").unwrap();
    let o = model(&[
        "export",
        "--params",
        &f("notes.txt"),
        "--onnx",
        &f("a.onnx"),
    ]);
    assert_refused(&o, &["notes.txt", "parameter file has 5 bytes"]);
    let o = model(&["export", "--params", &s(dir), "--safetensors", &f("a.st")]);
    assert_refused(&o, &["directory"]);
    let o = model(&["export", "--params", &f("nope.raw"), "--onnx", &f("a.onnx")]);
    assert_refused(&o, &["nope.raw"]);
    // An output in a folder that does not exist; the input as output.
    let o = model(&["export", "--params", &ckpt, "--onnx", &f("no/such/a.onnx")]);
    assert_refused(&o, &["--onnx", "does not exist"]);
    let o = model(&["export", "--params", &ckpt, "--safetensors", &ckpt]);
    assert_refused(&o, &["--safetensors"]);
    assert!(catdog::checkpoint::load(&dir.join("m.ckpt")).is_ok());
    // No format asked for: clap's usage error, exit code 2.
    let o = model(&["export", "--params", &ckpt]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::stderr_of(&o).contains("--onnx"));

    // Import: not a safetensors file, a cut one, one of another model, a foreign dtype.
    let o = model(&["import", "--safetensors", &raw, "--save", &f("x.raw")]);
    assert_refused(&o, &[&raw, "not a safetensors file"]);
    let o = model(&["export", "--params", &ckpt, "--safetensors", &f("good.st")]);
    assert_ok(&o);
    let good = std::fs::read(out.path("good.st")).unwrap();
    std::fs::write(out.path("cut.st"), &good[..good.len() - 10]).unwrap();
    let o = model(&[
        "import",
        "--safetensors",
        &f("cut.st"),
        "--save",
        &f("x.raw"),
    ]);
    assert_refused(&o, &["cut.st", "not a safetensors file"]);
    let other = |name: &str, dtype: safetensors::Dtype, shape: Vec<usize>| {
        let data = vec![0u8; shape.iter().product::<usize>() * dtype.bitsize() / 8];
        let v = safetensors::tensor::TensorView::new(dtype, shape, &data).unwrap();
        safetensors::serialize([(name, v)], None).unwrap()
    };
    let bytes = other("linear.weight", safetensors::Dtype::F32, vec![2, 2]);
    std::fs::write(out.path("other.st"), bytes).unwrap();
    let o = model(&[
        "import",
        "--safetensors",
        &f("other.st"),
        "--save",
        &f("x.raw"),
    ]);
    assert_refused(
        &o,
        &[
            "other.st",
            "missing: conv1.weight",
            "not expected: linear.weight",
        ],
    );
    let o = model(&[
        "import",
        "--safetensors",
        &f("nope.st"),
        "--save",
        &f("x.raw"),
    ]);
    assert_refused(&o, &["nope.st"]);
    let o = model(&[
        "import",
        "--safetensors",
        &f("good.st"),
        "--save",
        &f("no/x.raw"),
    ]);
    assert_refused(&o, &["--save", "does not exist"]);
    assert!(
        !out.path("x.raw").exists(),
        "a refused import wrote its output"
    );
    assert!(!out.path("a.onnx").exists() && !out.path("a.st").exists());
    done();
}
