//! What `model eval` reports beyond accuracy: the confusion matrix, precision and recall per
//! class (dog = positive, as P(dog) is the network's output).

use std::fmt::Write;

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
}
