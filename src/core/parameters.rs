//! Parameters: the original's `parameters.raw` format, and He-normal initialisation
//! (the original's `parameters.asm` only read the file).
//!
//! `parameters.raw` is little-endian f32, no header, in this order: conv1_w, conv2_w, conv3_w,
//! conv1_b, conv2_b, conv3_b, fc1_w, fc1_b, fc2_w, fc2_b, each in the original's layout. Our
//! parameter arena uses exactly this order and layout, so reading and writing are one copy.

use crate::config::Shapes;
use crate::rng::Rng;
use byteorder::{ByteOrder, LE};
use std::path::Path;

/// Names of the parameter tensors, in file order.
pub const NAMES: [&str; 10] = [
    "conv1_w", "conv2_w", "conv3_w", "conv1_b", "conv2_b", "conv3_b", "fc1_w", "fc1_b", "fc2_w",
    "fc2_b",
];

/// Fills `params` (all tensors, file order) with He-normal weights (std = sqrt(2 / fan_in)) and
/// zero biases.
pub fn he_init(shapes: &Shapes, params: &mut [f32], seed: u64) {
    let lens = shapes.param_lens();
    let fan_in = [
        9 * shapes.conv[0].cin,
        9 * shapes.conv[1].cin,
        9 * shapes.conv[2].cin,
        0,
        0,
        0,
        shapes.flat,
        0,
        shapes.fc1,
        0,
    ];
    let mut rng = Rng::new(seed);
    let mut off = 0;
    for (len, fan) in lens.iter().zip(fan_in) {
        let t = &mut params[off..off + len];
        if fan == 0 {
            t.fill(0.0);
        } else {
            let std = (2.0 / fan as f64).sqrt();
            t.iter_mut().for_each(|v| *v = (rng.normal() * std) as f32);
        }
        off += len;
    }
}

/// Reads `parameters.raw` into `params`, refusing a file of the wrong size with a message that
/// says what was expected.
pub fn read_raw(path: &Path, shapes: &Shapes, params: &mut [f32]) -> Result<(), String> {
    let want = shapes.param_count() * 4;
    let meta = catdog_guard::metadata_of(path, "parameter file")?;
    // A FIFO or device is refused here, without blocking on it.
    let mut file = catdog_guard::open_regular(path, "the parameter file")?;
    if meta.len() != want as u64 {
        return Err(format!(
            "{}: parameter file has {} bytes, expected {} ({} float32 values for image {}, widths {}/{}/{}, fc1 {})",
            path.display(),
            meta.len(),
            want,
            shapes.param_count(),
            shapes.conv[0].h,
            shapes.conv[0].cout,
            shapes.conv[1].cout,
            shapes.conv[2].cout,
            shapes.fc1
        ));
    }
    let mut bytes = Vec::with_capacity(want);
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| format!("{}: cannot read parameter file: {e}", path.display()))?;
    if bytes.len() != want {
        return Err(format!(
            "{}: file changed size while being read",
            path.display()
        ));
    }
    parse_raw(&bytes, shapes, params).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the bytes of a `parameters.raw` file into `params` (the checks of [`read_raw`]: the
/// exact size for `shapes`, every value finite). `params` must hold at least
/// `shapes.param_count()` values; `Err` if it does not.
pub fn parse_raw(bytes: &[u8], shapes: &Shapes, params: &mut [f32]) -> Result<(), String> {
    let n = shapes.param_count();
    if bytes.len() != n * 4 {
        return Err(format!(
            "parameter file has {} bytes, expected {} ({} float32 values for image {}, widths {}/{}/{}, fc1 {})",
            bytes.len(),
            n * 4,
            n,
            shapes.conv[0].h,
            shapes.conv[0].cout,
            shapes.conv[1].cout,
            shapes.conv[2].cout,
            shapes.fc1
        ));
    }
    let Some(params) = params.get_mut(..n) else {
        return Err(format!(
            "room for {} parameters, the network needs {n}",
            params.len()
        ));
    };
    LE::read_f32_into(bytes, params);
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "value {} (in {}) is not a finite number",
            i,
            tensor_of(shapes, i)
        ));
    }
    Ok(())
}

/// Which tensor holds parameter number `i` (for messages).
pub fn tensor_of(shapes: &Shapes, mut i: usize) -> &'static str {
    for (name, len) in NAMES.iter().zip(shapes.param_lens()) {
        if i < len {
            return name;
        }
        i -= len;
    }
    "past the end"
}

/// Writes `params` in the `parameters.raw` format, atomically (temporary file, fsync, rename).
pub fn write_raw(path: &Path, shapes: &Shapes, params: &[f32]) -> Result<(), String> {
    let params = &params[..shapes.param_count()];
    let mut bytes = vec![0u8; params.len() * 4];
    LE::write_f32_into(params, &mut bytes);
    catdog_guard::write_atomic(path, &bytes)
}
