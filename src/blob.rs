//! The dataset blob: the format shared by `tools/pack` (writer) and the trainer (reader).
//! (Contract stub: the pack issue fills this in; the trainer uses only the reader API below.)

use std::path::Path;

/// A validated, memory-mapped dataset blob.
pub struct Blob {
    _private: (),
}

/// Label value of an unlabeled sample.
pub const UNLABELED: u8 = 255;

impl Blob {
    /// Maps and validates `path` (header, sizes, checksum); errors name the file and the problem.
    pub fn open(path: &Path) -> Result<Blob, String> {
        let _ = path;
        todo!()
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (height, width, channels) of every image.
    pub fn dims(&self) -> (usize, usize, usize) {
        todo!()
    }
    /// HWC u8 pixels of sample `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let _ = i;
        todo!()
    }
    /// One label per sample: 0 = cat, 1 = dog, [`UNLABELED`].
    pub fn labels(&self) -> &[u8] {
        todo!()
    }
    /// The source path of sample `i`, as recorded by the packer.
    pub fn source(&self, i: usize) -> &str {
        let _ = i;
        todo!()
    }
    /// Class names, index = label.
    pub fn class_names(&self) -> Vec<String> {
        todo!()
    }
}
