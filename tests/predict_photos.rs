//! `model predict` on photos and folders directly (decoded by the packer, `tools/pack photos`;
//! the trainer has no decoder), mixed with packed blobs, in the order given.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/packer.rs"]
mod packer;

use common::{assert_ok, tmp_with_blobs, SMALL_NET};
use packer::pack_bin;
use std::process::{Command, Output};

fn model(args: &[&str]) -> Output {
    pack_bin();
    Command::new(env!("CARGO_BIN_EXE_model"))
        .current_dir(common::scratch_cwd())
        .env_remove("CATDOG_PACK")
        .args(args)
        .output()
        .unwrap()
}

fn lines(o: &Output) -> Vec<Vec<String>> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn predict_takes_photos_folders_and_blobs() {
    let dir = tmp_with_blobs("predict-photos", 16, (32, 1), (8, 2));
    let d = |p: &str| dir.join(p).display().to_string();
    let (train, test, ckpt) = (d("train.bin"), d("test.bin"), d("m.ckpt"));
    let mut args = vec![
        "train",
        "--train",
        &train,
        "--test",
        &test,
        "--checkpoint",
        &ckpt,
    ];
    args.extend(["--batch-size", "8", "--epochs", "1", "--log-every", "0"]);
    args.extend(SMALL_NET);
    let o = model(&args);
    assert_ok(&o);
    std::fs::create_dir_all(dir.join("pets")).unwrap();
    std::fs::write(dir.join("one.png"), http::png(30, 20, true, 1)).unwrap();
    std::fs::write(dir.join("pets/b.png"), http::png(20, 30, false, 2)).unwrap();
    std::fs::write(dir.join("pets/a.png"), http::png(25, 25, true, 3)).unwrap();
    std::fs::write(dir.join("pets/broken.jpg"), b"not a photo").unwrap();

    let o = model(&[
        "predict",
        "--params",
        &d("m.ckpt"),
        &d("one.png"),
        &d("pets"),
        &d("test.bin"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("skipped ") && l.contains("broken.jpg")),
        "{err}"
    );
    let got = lines(&o);
    // The photo, the folder's photos in name order, then the blob's 8 samples.
    assert_eq!(got.len(), 3 + 8, "{got:?}");
    assert_eq!(got[0][0], d("one.png"));
    assert!(
        got[1][0].ends_with("pets/a.png") && got[2][0].ends_with("pets/b.png"),
        "{got:?}"
    );
    assert_eq!(got[3][0], "synthetic/0.png");
    for l in &got {
        let p: f32 = l[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{l:?}");
        assert_eq!(l[2], if p > 0.5 { "dog" } else { "cat" });
    }
    // The same photo packed by hand at the model's size gives the same P(dog).
    let st = Command::new(pack_bin())
        .args([
            "photos",
            &d("one.png"),
            "-o",
            &d("one.bin"),
            "--size",
            "16",
            "-q",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let o2 = model(&["predict", "--params", &d("m.ckpt"), &d("one.bin")]);
    assert_eq!(lines(&o2)[0], got[0]);

    // A missing input is one error line, exit code 2.
    let o = model(&["predict", "--params", &d("m.ckpt"), &d("nope.jpg")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("nope.jpg"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
