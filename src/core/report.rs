//! What a run reports about its predictions: the original's log lines (its per-batch loss line,
//! its decimal printing, its accuracy), accuracy and mean loss, and what `model eval` adds: the
//! confusion matrix, precision and recall per class (dog = positive, as P(dog) is the network's
//! output), and the calibration.

use crate::network::EpochOptions;
use std::fmt::Write;

/// Prints the original's per-batch line when `opts.log_every` says so: `Epoch: E, Step: S,
/// Loss: L`, epochs and steps counted from 0 (`epoch` here counts from 1, `step` from 0), the
/// loss as [`original_decimal`] prints it.
/// A failed write to stdout is returned as an error (a closed pipe ends the run quietly).
pub fn log_step(opts: &EpochOptions, epoch: usize, step: usize, loss: f32) -> Result<(), String> {
    if opts.log_every > 0 && (step + 1).is_multiple_of(opts.log_every) {
        catdog_guard::outln!(
            "Epoch: {}, Step: {step}, Loss: {}",
            epoch - 1,
            original_decimal(loss as f64)
        )?;
    }
    Ok(())
}

/// Formats `x` as the original's `print.asm` does: a `-` for a negative value, the integer part,
/// a point, and the fraction times 1,000,000 *truncated* (not rounded) to an integer, printed as
/// its six lowest decimal digits.
///
/// ```
/// use catdog_core::report::original_decimal;
/// assert_eq!(original_decimal(0.6862299), "0.686229");
/// assert_eq!(original_decimal(0.421875), "0.421875");
/// assert_eq!(original_decimal(2.5), "2.500000");
/// assert_eq!(original_decimal(-0.0000019), "-0.000001");
/// ```
pub fn original_decimal(x: f64) -> String {
    let (sign, x) = if x >= 0.0 { ("", x) } else { ("-", 0.0 - x) };
    let int = x as i64;
    let frac = ((x - int as f64) * 1_000_000.0) as i64;
    format!("{sign}{int}.{:06}", frac.rem_euclid(1_000_000))
}

/// Test accuracy as the original computes it: the count of samples with `(p > 0.5) == label`,
/// divided by the sample count, in f32.
pub fn original_accuracy(probs: &[f32], labels: &[u8]) -> f32 {
    let correct = probs
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| (p > 0.5) as u8 == l)
        .count();
    correct as f32 / probs.len().max(1) as f32
}

/// Fraction of labeled samples whose prediction `p > 0.5` matches the label.
pub fn accuracy(probs: &[f32], labels: &[u8]) -> f64 {
    Confusion::new(probs, labels).accuracy()
}

/// Mean binary cross-entropy of predictions against labels (labeled samples only), as the
/// training loss is defined.
pub fn mean_bce(probs: &[f32], labels: &[u8]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (&p, &l) in probs.iter().zip(labels) {
        if l <= 1 {
            let (p, y) = (p as f64, l as f64);
            // The 1e-7 that keeps ln finite makes a perfect prediction's loss -1e-7: a loss
            // is never below 0 ("-0.0000" in the summary line).
            sum += (-(y * (p + 1e-7).ln() + (1.0 - y) * (1.0 - p + 1e-7).ln())).max(0.0);
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// `m[true][predicted]`, 0 = cat, 1 = dog.
    pub m: [[usize; 2]; 2],
    /// Samples without a label (not counted in `m`).
    pub unlabeled: usize,
}

impl Confusion {
    /// Counts predictions `p > 0.5` against `labels` (0 cat, 1 dog, anything else unlabeled).
    pub fn new(probs: &[f32], labels: &[u8]) -> Self {
        let mut c = Confusion::default();
        for (&p, &l) in probs.iter().zip(labels) {
            if l > 1 {
                c.unlabeled += 1;
            } else {
                c.m[l as usize][(p > 0.5) as usize] += 1;
            }
        }
        c
    }
    pub fn total(&self) -> usize {
        self.m.iter().flatten().sum()
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.m[0][0] + self.m[1][1], self.total())
    }
    /// Of the samples predicted as `class`, the fraction that are `class`.
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.m[class][class], self.m[0][class] + self.m[1][class])
    }
    /// Of the samples that are `class`, the fraction predicted as `class`.
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.m[class][class], self.m[class][0] + self.m[class][1])
    }
    /// A small table for the terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "confusion matrix ({} labeled samples; rows: true class, columns: predicted)",
            self.total()
        );
        let _ = writeln!(s, "{:>10} {:>8} {:>8}", "", "cat", "dog");
        for (i, name) in ["cat", "dog"].iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>10} {:>8} {:>8}",
                format!("true {name}"),
                self.m[i][0],
                self.m[i][1]
            );
        }
        // A ratio over no samples is not 0: it is undefined, and printed as such.
        let or_na = |v: f64, over: usize| {
            if over == 0 {
                "n/a".to_string()
            } else {
                format!("{v:.4}")
            }
        };
        for (i, name) in ["cat", "dog"].iter().enumerate() {
            let _ = writeln!(
                s,
                "{name}: precision {}, recall {}",
                or_na(self.precision(i), self.m[0][i] + self.m[1][i]),
                or_na(self.recall(i), self.m[i][0] + self.m[i][1])
            );
        }
        if self.unlabeled > 0 {
            let _ = writeln!(s, "({} unlabeled samples not counted)", self.unlabeled);
        }
        s
    }
}

/// How well P(dog) is calibrated: the samples in [`Calibration::BINS`] equal-width bins of
/// their confidence, P(predicted class) = `max(p, 1 - p)` (predicted dog when `p > 0.5`, as
/// [`Confusion`] counts), each bin with its mean confidence and its accuracy. Unlabeled samples
/// are left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub bins: Vec<CalibrationBin>,
}

/// One bin of [`Calibration`]: confidences in `[lo, hi)` (the last bin includes 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Mean confidence of the bin's samples (0 when empty).
    pub confidence: f64,
    /// Fraction of the bin's samples predicted right (0 when empty).
    pub accuracy: f64,
}

impl Calibration {
    /// Bins of the expected calibration error (as Guo et al. 2017).
    pub const BINS: usize = 15;

    pub fn new(probs: &[f32], labels: &[u8]) -> Self {
        let n = Self::BINS;
        let mut bins: Vec<CalibrationBin> = (0..n)
            .map(|k| CalibrationBin {
                lo: k as f64 / n as f64,
                hi: (k + 1) as f64 / n as f64,
                ..Default::default()
            })
            .collect();
        for (&p, &l) in probs.iter().zip(labels) {
            if l > 1 {
                continue;
            }
            let dog = p > 0.5;
            let conf = if dog { p as f64 } else { 1.0 - p as f64 };
            let b = &mut bins[((conf * n as f64) as usize).min(n - 1)];
            b.count += 1;
            b.confidence += conf;
            b.accuracy += (dog == (l == 1)) as u8 as f64;
        }
        for b in bins.iter_mut().filter(|b| b.count > 0) {
            b.confidence /= b.count as f64;
            b.accuracy /= b.count as f64;
        }
        Self { bins }
    }

    /// The expected calibration error: the mean over samples of |accuracy - confidence| of
    /// their bin (0 when perfectly calibrated, and for no samples).
    pub fn ece(&self) -> f64 {
        let total: usize = self.bins.iter().map(|b| b.count).sum();
        let sum: f64 = self
            .bins
            .iter()
            .map(|b| b.count as f64 * (b.accuracy - b.confidence).abs())
            .sum();
        sum / total.max(1) as f64
    }

    /// The ECE and the non-empty bins, for the terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "calibration: expected calibration error {:.4} ({} equal-width bins of P(predicted \
             class); 0 is perfect)",
            self.ece(),
            Self::BINS
        );
        let _ = writeln!(
            s,
            "{:>13} {:>8} {:>15} {:>9}",
            "P(predicted)", "samples", "mean confidence", "accuracy"
        );
        for b in self.bins.iter().filter(|b| b.count > 0) {
            let _ = writeln!(
                s,
                "{:>13} {:>8} {:>15.4} {:>9.4}",
                format!("{:.3}-{:.3}", b.lo, b.hi),
                b.count,
                b.confidence,
                b.accuracy
            );
        }
        s
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates() {
        let probs = [0.9, 0.2, 0.7, 0.4, 0.6, 0.1];
        let labels = [1, 0, 0, 1, 1, 255];
        let c = Confusion::new(&probs, &labels);
        assert_eq!(c.m, [[1, 1], [1, 2]]);
        assert_eq!(c.unlabeled, 1);
        assert!((c.accuracy() - 0.6).abs() < 1e-12);
        assert!((c.precision(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.precision(0) - 0.5).abs() < 1e-12);
        assert!((c.recall(0) - 0.5).abs() < 1e-12);
        assert!(c.render().contains("true dog        1        2"));
    }

    #[test]
    fn expected_calibration_error_of_a_hand_made_example() {
        // Confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (right): one per bin, so the
        // ECE is the mean of |1 - 0.9|, |0 - 0.8|, |1 - 0.7|, |1 - 0.6| = 1.6 / 4.
        let c = Calibration::new(&[0.9, 0.8, 0.3, 0.6, 0.5], &[1, 0, 0, 1, 255]);
        assert_eq!(c.bins.iter().map(|b| b.count).sum::<usize>(), 4);
        assert!((c.ece() - 0.4).abs() < 1e-6, "{}", c.ece());
        // Two in one bin (0.95 right, 0.96 wrong): |0.5 - 0.955|.
        let c = Calibration::new(&[0.95, 0.04], &[1, 1]);
        assert_eq!(c.bins[14].count, 2);
        assert!((c.ece() - 0.455).abs() < 1e-6, "{}", c.ece());
        // P(dog) 0.5 predicts cat with confidence 0.5: bin 7; 1.0 goes to the last bin.
        let c = Calibration::new(&[0.5, 1.0], &[0, 1]);
        assert_eq!((c.bins[7].count, c.bins[14].count), (1, 1));
        assert!((c.ece() - 0.25).abs() < 1e-9, "{}", c.ece());
        assert!(c.render().contains("expected calibration error 0.2500"));
        assert_eq!(Calibration::new(&[], &[]).ece(), 0.0);
    }
}
