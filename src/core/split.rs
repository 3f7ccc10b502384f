//! A validation set held out of the training data (`model train --val-fraction F`): a
//! stratified, seeded split of sample indices, and [`Subset`], a view of a dataset through an
//! index map (the images stay where they are; only the indices and labels are held).

use crate::dataset::Dataset;
use crate::rng::Rng;

/// The two parts of a split: sample indices of the data, each list in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

/// Holds out `fraction` of each class of the first `n` labels (0 cat, 1 dog) for validation:
/// per class, its samples in an order shuffled by `seed`, the first `round(fraction * count)`
/// to validation, the rest to training. The same labels, fraction and seed give the same split
/// on any machine. `Err` for a fraction outside (0, 1) or a part left empty.
pub fn stratified(labels: &[u8], n: usize, fraction: f64, seed: u64) -> Result<Split, String> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(format!(
            "--val-fraction {fraction} is not usable: it must be between 0 and 1 (e.g. 0.1)"
        ));
    }
    let n = n.min(labels.len());
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in 0..2u8 {
        let mut idx: Vec<u32> = (0..n as u32)
            .filter(|&i| labels[i as usize] == class)
            .collect();
        // Its own stream: the split does not move when other uses of the seed change.
        Rng::new(seed.wrapping_mul(0x9FB2_1C65_1E98_DF25) ^ 0x005E_1EC7 ^ class as u64)
            .shuffle(&mut idx);
        let k = (fraction * idx.len() as f64).round() as usize;
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    if val.is_empty() || train.is_empty() {
        return Err(format!(
            "--val-fraction {fraction} of {n} training samples leaves {} for validation and {} \
             for training: both need samples (use a fraction nearer 0.5, or more data)",
            val.len(),
            train.len()
        ));
    }
    Ok(Split { train, val })
}

/// The samples `index` of `base`, as a dataset of `index.len()` samples: sample `i` is
/// `base`'s sample `index[i]`.
pub struct Subset<'a> {
    base: &'a dyn Dataset,
    index: Vec<u32>,
    labels: Vec<u8>,
}

impl<'a> Subset<'a> {
    /// Panics when an index is out of range for `base`.
    pub fn new(base: &'a dyn Dataset, index: Vec<u32>) -> Self {
        let all = base.labels();
        let labels = index.iter().map(|&i| all[i as usize]).collect();
        Self {
            base,
            index,
            labels,
        }
    }
    /// The index in the base dataset of each sample.
    pub fn index(&self) -> &[u32] {
        &self.index
    }
}

impl Dataset for Subset<'_> {
    fn len(&self) -> usize {
        self.index.len()
    }
    fn image(&self, i: usize) -> &[u8] {
        self.base.image(self.index[i] as usize)
    }
    fn labels(&self) -> &[u8] {
        &self.labels
    }
    fn check_unchanged(&self) -> Result<(), String> {
        self.base.check_unchanged()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_outside_0_1_are_refused() {
        let l = [0u8, 1, 0, 1];
        for f in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            assert!(stratified(&l, 4, f, 1).is_err(), "{f}");
        }
        assert!(stratified(&l, 4, 0.1, 1)
            .unwrap_err()
            .contains("0 for validation"));
    }
}
