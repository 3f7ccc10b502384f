//! Per-epoch training metrics and their CSV file.
//!
//! The trainer appends one [`EpochRecord`] per finished epoch, keeps the list in the checkpoint
//! (see [`crate::checkpoint`]) and rewrites `metrics.csv` after each epoch with [`write_csv`].
//! The file is meant for people and spreadsheets, and [`read_csv`] reads it back exactly.
//!
//! Format: UTF-8, `\n` line ends, one header line
//! `epoch,train_loss,test_accuracy,test_loss,samples_per_s,elapsed_s,lr,val_accuracy,val_loss`,
//! then one line per record (files of the 7-column format, without the validation columns,
//! are read too). Numbers are written in Rust's shortest round-trip notation (so reading gives back the
//! bit-identical value; a diverged loss is written `NaN`, an overflow `inf`). A missing test
//! measurement (`None`) is an empty cell. `test_accuracy` is whatever fraction the trainer
//! records (the trainer uses 0..1). With label smoothing, `train_loss` is against the smoothed
//! targets (never below the targets' entropy, about 0.199 for 0.1); `test_loss` is always
//! against the plain labels.

use crate::guard::write_atomic;
use std::path::Path;

/// What one epoch of training produced.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, as the trainer counts them (1 = the first epoch).
    pub epoch: usize,
    /// Mean training loss over the epoch (against the smoothed targets with label smoothing).
    pub train_loss: f64,
    /// Accuracy on the test set, when it was measured after this epoch.
    pub test_accuracy: Option<f64>,
    /// Mean loss on the test set, when it was measured after this epoch.
    pub test_loss: Option<f64>,
    /// Training throughput over the epoch.
    pub samples_per_s: f64,
    /// Seconds since the start of training (of the whole run, across resumes).
    pub elapsed_s: f64,
    /// Learning rate used during the epoch.
    pub lr: f32,
    /// Accuracy on the validation set (`--val-fraction`, `--val`), when there is one.
    pub val_accuracy: Option<f64>,
    /// Mean loss on the validation set, when there is one.
    pub val_loss: Option<f64>,
}

/// The CSV header line (without the line end).
pub const CSV_HEADER: &str =
    "epoch,train_loss,test_accuracy,test_loss,samples_per_s,elapsed_s,lr,val_accuracy,val_loss";

/// The header of files written before the validation columns (read as well).
const CSV_HEADER_7: &str = "epoch,train_loss,test_accuracy,test_loss,samples_per_s,elapsed_s,lr";

/// Columns of the CSV file (a row of the 7-column format has no validation cells).
const COLUMNS: usize = 9;

/// The CSV text for `records` (header included), as [`write_csv`] writes it.
pub fn to_csv(records: &[EpochRecord]) -> String {
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut s = String::with_capacity(64 * (records.len() + 1));
    s.push_str(CSV_HEADER);
    s.push('\n');
    for r in records {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.epoch,
            r.train_loss,
            opt(r.test_accuracy),
            opt(r.test_loss),
            r.samples_per_s,
            r.elapsed_s,
            r.lr,
            opt(r.val_accuracy),
            opt(r.val_loss)
        ));
    }
    s
}

/// Writes `records` to `path` as CSV, atomically (temporary file, fsync, rename): a reader or a
/// kill never sees a half-written file.
pub fn write_csv(path: &Path, records: &[EpochRecord]) -> Result<(), String> {
    write_atomic(path, to_csv(records).as_bytes())
}

/// Reads a file written by [`write_csv`]. Errors name the file, and the line for bad content.
pub fn read_csv(path: &Path) -> Result<Vec<EpochRecord>, String> {
    if path.is_dir() {
        return Err(format!(
            "{}: is a directory, expected a metrics CSV file",
            path.display()
        ));
    }
    if path.exists() && !path.is_file() {
        return Err(format!(
            "{}: is not a regular file, expected a metrics CSV file",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read metrics file: {e}", path.display()))?;
    parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses CSV text as written by [`to_csv`]; errors name the line (1-based).
pub fn parse_csv(text: &str) -> Result<Vec<EpochRecord>, String> {
    let mut lines = text.split('\n').enumerate();
    match lines.next() {
        Some((_, h)) if [CSV_HEADER, CSV_HEADER_7].contains(&h.trim_end_matches('\r')) => {}
        Some((_, h)) if h.trim().is_empty() => {
            return Err(format!(
                "line 1: empty, expected the header \"{CSV_HEADER}\""
            ))
        }
        Some((_, h)) => {
            return Err(format!(
                "line 1: not a metrics CSV header: expected \"{CSV_HEADER}\", found \"{}\"",
                clip(h.trim_end_matches('\r'))
            ))
        }
        None => unreachable!("split yields at least one item"),
    }
    let mut out = Vec::new();
    for (i, raw) in lines {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != COLUMNS && cells.len() != 7 {
            return Err(format!(
                "line {n}: expected {COLUMNS} comma-separated cells, found {}: \"{}\"",
                cells.len(),
                clip(line)
            ));
        }
        let f = |k: usize, name: &str| -> Result<f64, String> {
            cells[k].trim().parse::<f64>().map_err(|_| {
                format!(
                    "line {n}: {name} \"{}\" is not a number",
                    clip(cells[k].trim())
                )
            })
        };
        let opt = |k: usize, name: &str| -> Result<Option<f64>, String> {
            if cells[k].trim().is_empty() {
                Ok(None)
            } else {
                f(k, name).map(Some)
            }
        };
        let epoch = cells[0].trim().parse::<usize>().map_err(|_| {
            format!(
                "line {n}: epoch \"{}\" is not a whole number",
                clip(cells[0].trim())
            )
        })?;
        let lr = cells[6]
            .trim()
            .parse::<f32>()
            .map_err(|_| format!("line {n}: lr \"{}\" is not a number", clip(cells[6].trim())))?;
        out.push(EpochRecord {
            epoch,
            train_loss: f(1, "train_loss")?,
            test_accuracy: opt(2, "test_accuracy")?,
            test_loss: opt(3, "test_loss")?,
            samples_per_s: f(4, "samples_per_s")?,
            elapsed_s: f(5, "elapsed_s")?,
            lr,
            val_accuracy: if cells.len() > 7 {
                opt(7, "val_accuracy")?
            } else {
                None
            },
            val_loss: if cells.len() > 7 {
                opt(8, "val_loss")?
            } else {
                None
            },
        });
    }
    Ok(out)
}

/// At most 60 characters of `s`, for messages.
fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(57).collect::<String>())
    }
}

/// A rate for progress lines: at most one decimal (`1234.5 samples/s`).
pub fn rate(per_sec: f64, unit: &str) -> String {
    format!("{per_sec:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize, acc: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.1 + epoch as f64 / 3.0,
            test_accuracy: acc,
            test_loss: acc.map(|a| 1.0 - a),
            samples_per_s: 123.456,
            elapsed_s: 7.25 * epoch as f64,
            lr: 0.01,
            val_accuracy: acc.map(|a| a - 0.01),
            val_loss: None,
        }
    }

    #[test]
    fn text_round_trips_exactly_with_missing_cells() {
        let rs = vec![rec(1, None), rec(2, Some(0.7812345678901234)), rec(3, None)];
        let text = to_csv(&rs);
        assert!(text.starts_with(CSV_HEADER));
        assert_eq!(text.lines().nth(1).unwrap().split(',').nth(2), Some(""));
        assert_eq!(parse_csv(&text).unwrap(), rs);
    }

    #[test]
    fn non_finite_values_round_trip() {
        let mut r = rec(1, Some(0.5));
        r.train_loss = f64::NAN;
        r.samples_per_s = f64::INFINITY;
        let back = parse_csv(&to_csv(&[r])).unwrap();
        assert!(back[0].train_loss.is_nan());
        assert_eq!(back[0].samples_per_s, f64::INFINITY);
    }

    #[test]
    fn errors_name_the_line() {
        let good = to_csv(&[rec(1, None), rec(2, None)]);
        let bad = good.replace("2,0.7666", "2,zz");
        let e = parse_csv(&bad).unwrap_err();
        assert!(e.contains("line 3") && e.contains("train_loss"), "{e}");
        let e = parse_csv("epoch,loss\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("header"), "{e}");
        let e = parse_csv(&format!("{CSV_HEADER}\n1,2,3\n")).unwrap_err();
        assert!(e.contains("line 2") && e.contains("found 3"), "{e}");
        let e = parse_csv(&format!("{CSV_HEADER}\n-1,2,,,1,1,0.1\n")).unwrap_err();
        assert!(e.contains("epoch"), "{e}");
        assert!(parse_csv("").unwrap_err().contains("line 1"));
    }

    #[test]
    fn files_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("catdog-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("metrics.csv");
        let rs = vec![rec(1, Some(0.5)), rec(2, None)];
        write_csv(&p, &rs).unwrap();
        assert_eq!(read_csv(&p).unwrap(), rs);
        write_csv(&p, &[]).unwrap();
        assert_eq!(read_csv(&p).unwrap(), vec![]);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temp file left"
        );
        std::fs::write(&p, format!("{CSV_HEADER}\n1,x,,,1,1,0.1\n")).unwrap();
        let e = read_csv(&p).unwrap_err();
        assert!(e.contains("metrics.csv") && e.contains("line 2"), "{e}");
        assert!(read_csv(&dir).unwrap_err().contains("directory"));
        assert!(read_csv(&dir.join("none.csv"))
            .unwrap_err()
            .contains("none.csv"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crlf_and_blank_lines_are_accepted() {
        let text = to_csv(&[rec(1, Some(0.25))]).replace('\n', "\r\n") + "\r\n";
        assert_eq!(parse_csv(&text).unwrap(), vec![rec(1, Some(0.25))]);
    }
}
