//! The dataset blob: the one file format shared by `tools/pack` (writer) and the trainer (reader).
//!
//! A blob holds N images of identical `height x width x channels` u8 pixels (HWC, RGB), one
//! label per image, the class names, the source path of every image, and checksums. The trainer
//! memory-maps it, so training never decodes an image. All integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  magic             b"CATDOGDS"
//!      8     4  version           u32, = 1
//!     12     4  header_crc        u32, CRC-32 (IEEE) of bytes [16, payload_offset)
//!     16     8  count             u64, number of samples N
//!     24     4  height            u32, > 0
//!     28     4  width             u32, > 0
//!     32     4  channels          u32, 1..=4 (the packer writes 3: RGB)
//!     36     4  num_classes       u32, <= 254
//!     40     8  meta_len          u64, bytes of the metadata section that starts at 64
//!     48     8  payload_offset    u64, multiple of 64, >= 64 + meta_len
//!     56     4  payload_crc       u32, CRC-32 (IEEE) of the payload
//!     60     4  flags             u32: bit 0 = the metadata ends with a sibling record; others 0
//!     64        metadata:
//!                 note            u32 length + UTF-8 (free text: who packed it, how)
//!                 class names     num_classes x (u32 length + UTF-8), index = label
//!                 labels          N bytes: label < num_classes, or 255 = unlabeled
//!                 source offsets  (N + 1) x u64: sample i's path is strings[off[i]..off[i+1]]
//!                 strings         the source paths, concatenated: the bytes of each name as
//!                                 the OS gave them (UTF-8 on most systems, but not always)
//!                 sibling record  only with flags bit 0, 16 bytes: the other half of a
//!                                 train/test pair packed together: its sample count u64,
//!                                 its payload CRC u32, its role u32 (1 test, 2 train)
//!                 zero padding    up to payload_offset
//! payload_offset  N x height x width x channels bytes: the images, HWC u8, sample after sample
//! ```
//!
//! The file size must be exactly `payload_offset + N * height * width * channels`: the reader
//! checks every size and offset against it (with overflow-checked arithmetic), both checksums,
//! every label and the path table, before it hands out a single slice, so a truncated,
//! damaged or foreign file is refused with a message that names the file and the problem, and no
//! accessor can read out of bounds. The payload starts on a 64-byte boundary of the file (and so
//! of the mapping, which is page-aligned); when `height * width * channels` is a multiple of 64,
//! as for 128x128x3, every image does.
//!
//! The writer ([`BlobWriter`]) writes to a temporary file beside the destination and renames it
//! into place only after everything is written and synced, so an interrupted run never leaves a
//! half blob under the final name.
//!
//! As with any memory map, the file must not be modified by another process while it is open.
//! If it is truncated anyway, the next access past its new end does not crash silently: the
//! mapping is registered with [`catdog_guard::guard_mapping`], which prints one `error:` line
//! naming the file and exits with code 2.

use byteorder::{ByteOrder, WriteBytesExt, LE};
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first eight bytes of every blob.
pub const MAGIC: [u8; 8] = *b"CATDOGDS";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Size of the fixed header; the metadata starts here.
pub const HEADER_LEN: usize = 64;
/// The payload (and the mapping) alignment.
pub const ALIGN: usize = 64;
/// Label value of an unlabeled sample.
pub const UNLABELED: u8 = 255;
/// Most classes a blob can name (labels 0..=253; 255 is [`UNLABELED`]).
pub const MAX_CLASSES: usize = 254;
/// Header flag: the metadata ends with a [`Sibling`] record.
pub const FLAG_SIBLING: u32 = 1;
/// Bytes of the sibling record.
const SIBLING_LEN: usize = 16;

/// The other half of a train/test pair that one `tools/pack` run wrote together: each blob of
/// the pair records the other's sample count and payload checksum, so a trainer can refuse a
/// train.bin beside a test.bin from another run (whose photos may be in the training set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sibling {
    pub count: u64,
    pub payload_crc: u32,
    /// Whether the sibling is the test set (else the training set).
    pub is_test: bool,
}

/// The class names the packer writes for labeled data: label 0 = cat, 1 = dog.
pub const CLASS_NAMES: [&str; 2] = ["cat", "dog"];

/// The parsed fixed header of a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub header_crc: u32,
    pub count: u64,
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub num_classes: u32,
    pub meta_len: u64,
    pub payload_offset: u64,
    pub payload_crc: u32,
    pub flags: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    LE::read_u32(&b[at..at + 4])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    LE::read_u64(&b[at..at + 8])
}

impl Header {
    /// Parses the 64 header bytes (magic and version checked; nothing else).
    fn parse(b: &[u8]) -> Result<Header, String> {
        if b[0..8] != MAGIC {
            let what = match &b[0..4] {
                [0xFF, 0xD8, 0xFF, _] => " (it looks like a JPEG image)",
                [0x89, b'P', b'N', b'G'] => " (it looks like a PNG image)",
                [b'P', b'K', 3, 4] => " (it looks like a zip archive)",
                _ => "",
            };
            return Err(format!(
                "not a catdog dataset blob: the file starts with {:02x?}, a blob starts with \"CATDOGDS\"{what}",
                &b[0..8]
            ));
        }
        let h = Header {
            version: u32_at(b, 8),
            header_crc: u32_at(b, 12),
            count: u64_at(b, 16),
            height: u32_at(b, 24),
            width: u32_at(b, 28),
            channels: u32_at(b, 32),
            num_classes: u32_at(b, 36),
            meta_len: u64_at(b, 40),
            payload_offset: u64_at(b, 48),
            payload_crc: u32_at(b, 56),
            flags: u32_at(b, 60),
        };
        if h.version != VERSION {
            return Err(format!(
                "blob format version {} is not supported (this build reads version {VERSION})",
                h.version
            ));
        }
        if h.flags & !FLAG_SIBLING != 0 {
            return Err(format!(
                "unknown header flags {:#x}: written by a newer tools/pack?",
                h.flags
            ));
        }
        Ok(h)
    }

    fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        LE::write_u32(&mut b[8..12], self.version);
        LE::write_u32(&mut b[12..16], self.header_crc);
        LE::write_u64(&mut b[16..24], self.count);
        LE::write_u32(&mut b[24..28], self.height);
        LE::write_u32(&mut b[28..32], self.width);
        LE::write_u32(&mut b[32..36], self.channels);
        LE::write_u32(&mut b[36..40], self.num_classes);
        LE::write_u64(&mut b[40..48], self.meta_len);
        LE::write_u64(&mut b[48..56], self.payload_offset);
        LE::write_u32(&mut b[56..60], self.payload_crc);
        LE::write_u32(&mut b[60..64], self.flags);
        b
    }
}

/// Whether [`Blob::open_with`] recomputes the payload checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Check everything, payload CRC included (what [`Blob::open`] does).
    All,
    /// Check the header, metadata and its CRC, but not the payload CRC (for `inspect`, which
    /// reports the payload's status itself via [`Blob::verify_payload`]).
    MetadataOnly,
}

/// The bytes behind a [`Blob`]: a read-only file mapping, or an owned copy
/// ([`Blob::from_bytes`], for tests and fuzzing).
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Which file a blob was opened from, and as what: device, inode, size, modification time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// A validated, memory-mapped dataset blob.
pub struct Blob {
    /// Turns a SIGBUS in the mapping (the file truncated under us) into one error line.
    /// Declared before `map`, so it is dropped (unregistered) before the unmapping.
    sigbus: Option<catdog_guard::MappingGuard>,
    map: Bytes,
    path: PathBuf,
    /// The opened file's identity, for [`Blob::check_unchanged`] (`None` for bytes in memory).
    file: Option<FileStamp>,
    header: Header,
    note: String,
    class_names: Vec<String>,
    labels_at: usize,
    offsets_at: usize,
    strings_at: usize,
    strings_len: usize,
    image_len: usize,
    sibling: Option<Sibling>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("class_names", &self.class_names)
            .finish()
    }
}

/// A cursor over the metadata that refuses to step past its end.
struct Meta<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Meta<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let left = (self.b.len() - self.at) as u64;
        if n > left {
            return Err(format!(
                "metadata is cut short: {what} needs {n} bytes at offset {}, only {left} left in the \
                 metadata section",
                HEADER_LEN + self.at
            ));
        }
        let s = &self.b[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = LE::read_u32(self.take(4, what)?);
        let s = self.take(n as u64, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }
}

impl Blob {
    /// Maps and validates `path` (header, sizes, checksums); errors name the file and the problem.
    pub fn open(path: &Path) -> Result<Blob, String> {
        Self::open_with(path, Verify::All)
    }

    /// As [`Blob::open`], choosing whether to verify the payload checksum.
    pub fn open_with(path: &Path, verify: Verify) -> Result<Blob, String> {
        let name = path.display();
        // Never blocks on a FIFO; refuses directories, pipes and devices.
        let file = catdog_guard::open_regular(path, "the dataset blob")?;
        let meta = file
            .metadata()
            .map_err(|e| format!("{name}: cannot stat: {e}"))?;
        let size = meta.len();
        if size < HEADER_LEN as u64 {
            // Also checked by `validate`; here so that an empty file is never mapped.
            return Err(format!(
                "{name}: too short to be a dataset blob: {size} bytes, the header alone is {HEADER_LEN}"
            ));
        }
        // SAFETY: the map is read-only; the documented contract is that the file is not modified
        // while open. Every access below is bounds-checked against the mapped length.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("{name}: cannot map: {e}"))?;
        if map.len() as u64 != size {
            return Err(format!("{name}: the file changed size while being opened"));
        }
        // Before validation reads it: a file truncated from now on gives an error line.
        let sigbus = catdog_guard::guard_mapping(map.as_ptr(), map.len(), path);
        let mut blob =
            Self::validate(Bytes::Map(map), path, verify).map_err(|e| format!("{name}: {e}"))?;
        blob.sigbus = sigbus;
        blob.file = Some(FileStamp::of(&meta));
        Ok(blob)
    }

    /// Validates an in-memory blob exactly as [`Blob::open`] validates a file (the same checks,
    /// the same code); the bytes are copied, and [`Blob::path`] is `path`, used only in
    /// messages. Unlike a mapping, the copy's payload need not be 64-byte aligned.
    pub fn from_bytes(bytes: &[u8], path: &Path, verify: Verify) -> Result<Blob, String> {
        Self::validate(Bytes::Owned(bytes.to_vec()), path, verify)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn validate(map: Bytes, path: &Path, verify: Verify) -> Result<Blob, String> {
        let size = map.len() as u64;
        if size < HEADER_LEN as u64 {
            return Err(format!(
                "too short to be a dataset blob: {size} bytes, the header alone is {HEADER_LEN}"
            ));
        }
        let h = Header::parse(&map[..HEADER_LEN])?;
        if h.height == 0 || h.width == 0 {
            return Err(format!("bad header: image size {}x{}", h.height, h.width));
        }
        if !(1..=4).contains(&h.channels) {
            return Err(format!(
                "bad header: {} channels (1 to 4 allowed)",
                h.channels
            ));
        }
        if h.num_classes as usize > MAX_CLASSES {
            return Err(format!(
                "bad header: {} classes (at most {MAX_CLASSES})",
                h.num_classes
            ));
        }
        if h.payload_offset % ALIGN as u64 != 0 {
            return Err(format!(
                "bad header: payload offset {} is not a multiple of {ALIGN}",
                h.payload_offset
            ));
        }
        let meta_end = (HEADER_LEN as u64).checked_add(h.meta_len);
        if meta_end.is_none_or(|e| e > h.payload_offset) {
            return Err(format!(
                "bad header: metadata length {} runs past the payload offset {}",
                h.meta_len, h.payload_offset
            ));
        }
        let image_len = (h.height as u64)
            .checked_mul(h.width as u64)
            .and_then(|x| x.checked_mul(h.channels as u64))
            .filter(|&x| x <= usize::MAX as u64)
            .ok_or("bad header: image size overflows")?;
        let payload_len = image_len.checked_mul(h.count).ok_or_else(|| {
            format!(
                "bad header: {} samples of {image_len} bytes overflow",
                h.count
            )
        })?;
        let expected = h.payload_offset.checked_add(payload_len).ok_or_else(|| {
            format!(
                "bad header: payload offset {} + payload {payload_len} overflows",
                h.payload_offset
            )
        })?;
        if size < expected {
            return Err(format!(
                "truncated: the file is {size} bytes, its header promises {expected} ({} samples of \
                 {}x{}x{} from offset {}); {} bytes are missing",
                h.count,
                h.height,
                h.width,
                h.channels,
                h.payload_offset,
                expected - size
            ));
        }
        if size > expected {
            return Err(format!(
                "the file is {size} bytes, {} more than its header accounts for ({expected}): \
                 trailing data or a damaged header",
                size - expected
            ));
        }
        // From here every offset below `size` fits in usize (the file is mapped).
        let po = h.payload_offset as usize;
        let crc = crc32fast::hash(&map[16..po]);
        if crc != h.header_crc {
            return Err(format!(
                "header/metadata checksum mismatch (stored {:08x}, computed {crc:08x}): the labels, \
                 paths or header are damaged",
                h.header_crc
            ));
        }
        let mut m = Meta {
            b: &map[HEADER_LEN..HEADER_LEN + h.meta_len as usize],
            at: 0,
        };
        let note = m.string("the note")?;
        let mut class_names = Vec::with_capacity(h.num_classes as usize);
        for c in 0..h.num_classes {
            class_names.push(m.string(&format!("class name {c}"))?);
        }
        let labels_at = HEADER_LEN + m.at;
        let labels = m.take(h.count, "the labels")?;
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l != UNLABELED && l as u32 >= h.num_classes)
        {
            return Err(format!(
                "sample {i} has label {l}, but the blob names only {} classes",
                h.num_classes
            ));
        }
        let n_off = h.count.checked_add(1).and_then(|n| n.checked_mul(8));
        let offsets_at = HEADER_LEN + m.at;
        let offsets = m.take(
            n_off.ok_or("bad header: sample count overflows")?,
            "the source offsets",
        )?;
        let strings_at = HEADER_LEN + m.at;
        let tail = if h.flags & FLAG_SIBLING != 0 {
            SIBLING_LEN
        } else {
            0
        };
        let strings_len = (h.meta_len as usize - m.at)
            .checked_sub(tail)
            .ok_or("metadata is cut short: no room for the sibling record")?;
        let sibling = (tail > 0).then(|| {
            let at = strings_at + strings_len;
            Sibling {
                count: u64_at(&map, at),
                payload_crc: u32_at(&map, at + 8),
                is_test: u32_at(&map, at + 12) == 1,
            }
        });
        if tail > 0 && !matches!(u32_at(&map, strings_at + strings_len + 12), 1 | 2) {
            return Err("the sibling record names no role (1 test, 2 train)".into());
        }
        let mut prev = 0u64;
        for (i, o) in offsets.chunks_exact(8).enumerate() {
            let o = LE::read_u64(o);
            if (i == 0 && o != 0) || o < prev || o > strings_len as u64 {
                return Err(format!(
                    "source path table is damaged at entry {i} (offset {o}, previous {prev}, table \
                     {strings_len} bytes)"
                ));
            }
            prev = o;
        }
        if prev != strings_len as u64 {
            return Err(format!(
                "source path table ends at {prev}, but the metadata holds {strings_len} bytes of paths"
            ));
        }
        let blob = Blob {
            sigbus: None,
            file: None,
            path: path.to_path_buf(),
            header: h,
            note,
            class_names,
            labels_at,
            offsets_at,
            strings_at,
            strings_len,
            image_len: image_len as usize,
            sibling,
            map,
        };
        if verify == Verify::All {
            blob.verify_payload()?;
        }
        Ok(blob)
    }

    /// Checks that the file this blob was opened from is unchanged: still the file at its path
    /// (device and inode: not replaced), with the same size and modification time, and the
    /// mapped header, metadata and payload still matching their checksums (not rewritten in
    /// place, as `cp other.bin train.bin` does). `Err` says what changed, without the path.
    /// Reads the whole mapping (a CRC-32 of it); a blob from memory is always unchanged.
    pub fn check_unchanged(&self) -> Result<(), String> {
        let Some(was) = self.file else {
            return Ok(());
        };
        let now = std::fs::metadata(&self.path).map(|m| FileStamp::of(&m));
        let what = match now {
            Err(e) => Some(format!("it can no longer be read ({e})")),
            Ok(n) if (n.dev, n.ino) != (was.dev, was.ino) => {
                Some("another file was put in its place".to_string())
            }
            Ok(n) if n.size != was.size => Some(format!(
                "its size went from {} to {} bytes",
                was.size, n.size
            )),
            Ok(n) if n.mtime != was.mtime => Some("it was modified".to_string()),
            Ok(_) => None,
        };
        if let Some(w) = what {
            return Err(w);
        }
        let po = self.header.payload_offset as usize;
        let stored = u32::from_le_bytes(self.map[12..16].try_into().expect("4 bytes"));
        if stored != self.header.header_crc
            || crc32fast::hash(&self.map[16..po]) != self.header.header_crc
        {
            return Err("its header or labels were rewritten".into());
        }
        if crc32fast::hash(self.payload()) != self.header.payload_crc {
            return Err("its images were rewritten in place".into());
        }
        Ok(())
    }

    /// Recomputes the payload CRC-32 and compares it with the header's.
    pub fn verify_payload(&self) -> Result<(), String> {
        let crc = crc32fast::hash(self.payload());
        if crc != self.header.payload_crc {
            return Err(format!(
                "payload checksum mismatch (stored {:08x}, computed {crc:08x}): the image data is \
                 damaged",
                self.header.payload_crc
            ));
        }
        Ok(())
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.header.count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (height, width, channels) of every image.
    pub fn dims(&self) -> (usize, usize, usize) {
        let h = &self.header;
        (h.height as usize, h.width as usize, h.channels as usize)
    }
    /// Bytes of one image (`height * width * channels`).
    pub fn image_len(&self) -> usize {
        self.image_len
    }
    /// HWC u8 pixels of sample `i`. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(
            i < self.len(),
            "sample {i} out of range ({} samples)",
            self.len()
        );
        let at = self.header.payload_offset as usize + i * self.image_len;
        &self.map[at..at + self.image_len]
    }
    /// All images, back to back (`len() * image_len()` bytes, 64-byte aligned in a file mapping).
    pub fn payload(&self) -> &[u8] {
        &self.map[self.header.payload_offset as usize..]
    }
    /// One label per sample: 0 = cat, 1 = dog, [`UNLABELED`].
    pub fn labels(&self) -> &[u8] {
        &self.map[self.labels_at..self.labels_at + self.len()]
    }
    /// The source path of sample `i`, byte for byte as the packer recorded it (on Unix,
    /// `OsStr::from_bytes` of it names the file). Panics if `i >= len()`.
    pub fn source_bytes(&self, i: usize) -> &[u8] {
        assert!(
            i < self.len(),
            "sample {i} out of range ({} samples)",
            self.len()
        );
        let o = |k: usize| u64_at(&self.map, self.offsets_at + 8 * k) as usize;
        let (a, b) = (o(i), o(i + 1));
        debug_assert!(a <= b && b <= self.strings_len);
        &self.map[self.strings_at + a..self.strings_at + b]
    }
    /// The source path of sample `i` for printing: escaped by [`catdog_guard::escape_name`]
    /// (a name with a line break, a tab, a terminal escape or bytes that are not UTF-8 stays
    /// on one line and shows what it holds). Panics if `i >= len()`.
    pub fn source(&self, i: usize) -> String {
        catdog_guard::escape_name(self.source_bytes(i))
    }
    /// The other half of the train/test pair this blob was packed with, if any.
    pub fn sibling(&self) -> Option<Sibling> {
        self.sibling
    }
    /// Class names, index = label.
    pub fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }
    /// The packer's free-text note (tool, inputs, options).
    pub fn note(&self) -> &str {
        &self.note
    }
    /// The parsed fixed header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The path this blob was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Samples per label: index `c` counts label `c`; the last entry counts [`UNLABELED`].
    pub fn label_counts(&self) -> Vec<usize> {
        let n = self.class_names.len();
        let mut counts = vec![0usize; n + 1];
        for &l in self.labels() {
            counts[if l == UNLABELED { n } else { l as usize }] += 1;
        }
        counts
    }
}

/// Everything about a blob but its pixels: what [`BlobWriter::create`] needs up front.
#[derive(Clone, Debug, Default)]
pub struct BlobMeta {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub class_names: Vec<String>,
    /// One per sample: `< class_names.len()` or [`UNLABELED`].
    pub labels: Vec<u8>,
    /// One per sample: the bytes of the path (any bytes; UTF-8 on most systems).
    pub sources: Vec<Vec<u8>>,
    /// Free text recorded in the blob (e.g. the packing options).
    pub note: String,
}

/// Writes a blob: metadata first, then [`BlobWriter::push`] one image per sample in order, then
/// [`BlobWriter::finish`]. Writes into a temporary file beside `path` and renames it into place
/// in `finish`; dropping an unfinished writer deletes the temporary file.
pub struct BlobWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    header: Header,
    meta_bytes: Vec<u8>,
    image_len: usize,
    pushed: u64,
    crc: crc32fast::Hasher,
    done: bool,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("{}: cannot {what}: {e}", path.display())
}

/// The metadata section (before its padding): note and class names (u32 length, UTF-8), labels,
/// the `count + 1` source offsets (u64), the source paths, the sibling record.
fn metadata(meta: &BlobMeta, sibling: Option<&Sibling>) -> std::io::Result<Vec<u8>> {
    let mut mb = Vec::new();
    for s in std::iter::once(&meta.note).chain(&meta.class_names) {
        mb.write_u32::<LE>(s.len() as u32)?;
        mb.write_all(s.as_bytes())?;
    }
    mb.write_all(&meta.labels)?;
    mb.write_u64::<LE>(0)?;
    let mut off = 0u64;
    for s in &meta.sources {
        off += s.len() as u64;
        mb.write_u64::<LE>(off)?;
    }
    for s in &meta.sources {
        mb.write_all(s)?;
    }
    if let Some(sib) = sibling {
        mb.write_u64::<LE>(sib.count)?;
        mb.write_u32::<LE>(sib.payload_crc)?;
        mb.write_u32::<LE>(if sib.is_test { 1 } else { 2 })?;
    }
    Ok(mb)
}

impl BlobWriter {
    /// Starts writing the blob that will be `path`; checks `meta` for consistency.
    pub fn create(path: &Path, meta: &BlobMeta) -> Result<BlobWriter, String> {
        Self::create_paired(path, meta, None)
    }

    /// As [`BlobWriter::create`], recording `sibling`: the other blob of a pair written together.
    pub fn create_paired(
        path: &Path,
        meta: &BlobMeta,
        sibling: Option<Sibling>,
    ) -> Result<BlobWriter, String> {
        let count = meta.labels.len();
        if meta.sources.len() != count {
            return Err(format!(
                "{} labels but {} source paths",
                count,
                meta.sources.len()
            ));
        }
        if meta.height == 0 || meta.width == 0 || !(1..=4).contains(&meta.channels) {
            return Err(format!(
                "bad image shape {}x{}x{}",
                meta.height, meta.width, meta.channels
            ));
        }
        if meta.class_names.len() > MAX_CLASSES {
            return Err(format!(
                "{} classes (at most {MAX_CLASSES})",
                meta.class_names.len()
            ));
        }
        let nc = meta.class_names.len();
        if let Some(&l) = meta
            .labels
            .iter()
            .find(|&&l| l != UNLABELED && l as usize >= nc)
        {
            return Err(format!("label {l} but only {nc} classes"));
        }
        let mut mb = metadata(meta, sibling.as_ref()).expect("writing to a Vec cannot fail");
        let meta_len = mb.len() as u64;
        let payload_offset = (HEADER_LEN + mb.len()).next_multiple_of(ALIGN);
        mb.resize(payload_offset - HEADER_LEN, 0);
        let header = Header {
            version: VERSION,
            header_crc: 0,
            count: count as u64,
            height: meta.height,
            width: meta.width,
            channels: meta.channels,
            num_classes: nc as u32,
            meta_len,
            payload_offset: payload_offset as u64,
            payload_crc: 0,
            flags: if sibling.is_some() { FLAG_SIBLING } else { 0 },
        };
        let tmp = catdog_guard::tmp_path(path)?;
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
        let mut w = BlobWriter {
            out: Some(
                // Small buffer: the metadata is buffered, image-sized writes (>= 16 KiB) go straight
                // to the file without an extra copy.
                BufWriter::with_capacity(16 << 10, file),
            ),
            tmp,
            dest: path.to_path_buf(),
            image_len: (meta.height * meta.width * meta.channels) as usize,
            header,
            meta_bytes: mb,
            pushed: 0,
            crc: crc32fast::Hasher::new(),
            done: false,
        };
        let (hb, mb) = (w.header.to_bytes(), std::mem::take(&mut w.meta_bytes));
        let r = w.write(&hb).and_then(|_| w.write(&mb));
        w.meta_bytes = mb;
        r?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), String> {
        let out = self.out.as_mut().expect("writer already finished");
        out.write_all(b).map_err(|e| io_err(&self.tmp, "write", e))
    }

    /// Appends the next sample's pixels (exactly `height * width * channels` bytes).
    pub fn push(&mut self, pixels: &[u8]) -> Result<(), String> {
        if pixels.len() != self.image_len {
            return Err(format!(
                "image of {} bytes, the blob's images are {}",
                pixels.len(),
                self.image_len
            ));
        }
        if self.pushed == self.header.count {
            return Err(format!(
                "more than the {} samples declared",
                self.header.count
            ));
        }
        self.crc.update(pixels);
        self.pushed += 1;
        self.write(pixels)
    }

    /// Completes the header, syncs, and renames the blob into place.
    pub fn finish(self) -> Result<(), String> {
        self.finish_unrenamed()?.commit()
    }

    /// Completes the header and syncs the temporary file, but leaves the rename to
    /// [`PendingBlob::commit`]: a pair of blobs is renamed into place only when both are
    /// written. Dropping the [`PendingBlob`] instead deletes the temporary file.
    pub fn finish_unrenamed(mut self) -> Result<PendingBlob, String> {
        if self.pushed != self.header.count {
            return Err(format!(
                "{} of {} images written",
                self.pushed, self.header.count
            ));
        }
        self.header.payload_crc = std::mem::take(&mut self.crc).finalize();
        let mut h = crc32fast::Hasher::new();
        h.update(&self.header.to_bytes()[16..]);
        h.update(&self.meta_bytes);
        self.header.header_crc = h.finalize();
        let out = self.out.take().expect("writer already finished");
        let mut file = out
            .into_inner()
            .map_err(|e| io_err(&self.tmp, "write", e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&self.header.to_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(|e| io_err(&self.tmp, "write", e))?;
        drop(file);
        self.done = true;
        Ok(PendingBlob {
            tmp: std::mem::take(&mut self.tmp),
            dest: std::mem::take(&mut self.dest),
            done: false,
        })
    }
}

/// A blob written and synced under its temporary name ([`BlobWriter::finish_unrenamed`]).
pub struct PendingBlob {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl PendingBlob {
    /// Renames the blob into place.
    pub fn commit(mut self) -> Result<(), String> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Refuses a training and a test blob that are not the pair they say they are: when either
/// records a [`Sibling`] (both halves of a `tools/pack` split do), the other must have its
/// sample count and payload checksum. A train.bin beside the test.bin of another run would
/// otherwise test on photos it trained on.
pub fn check_pair(train: &Blob, test: &Blob) -> Result<(), String> {
    for (a, b) in [(train, test), (test, train)] {
        let Some(s) = a.sibling() else { continue };
        if b.len() as u64 != s.count || b.header.payload_crc != s.payload_crc {
            return Err(format!(
                "{} and {} are not a pair: {} was packed together with a {} set of {} samples \
                 (payload checksum {:08x}), but {} holds {} samples (checksum {:08x}). A split \
                 interrupted half-way, or a blob from another run, would mix photos of the \
                 test set into the training set: pack both again",
                train.path.display(),
                test.path.display(),
                a.path.display(),
                if s.is_test { "test" } else { "training" },
                s.count,
                s.payload_crc,
                b.path.display(),
                b.len(),
                b.header.payload_crc
            ));
        }
    }
    Ok(())
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a whole blob from `meta` and one pixel slice per sample.
pub fn write_blob<'a>(
    path: &Path,
    meta: &BlobMeta,
    images: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), String> {
    let mut w = BlobWriter::create(path, meta)?;
    for img in images {
        w.push(img)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh temporary folder, removed when dropped.
    struct TmpDir(PathBuf);

    impl std::ops::Deref for TmpDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmpdir(tag: &str) -> TmpDir {
        let d = std::env::temp_dir().join(format!("catdog-blob-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TmpDir(d)
    }

    /// Writes the blob of [`sample`]`(n)` to `p`; returns what it holds.
    fn write_sample(p: &Path, n: usize) -> (BlobMeta, Vec<Vec<u8>>) {
        let (meta, imgs) = sample(n);
        write_blob(p, &meta, imgs.iter().map(|v| v.as_slice())).unwrap();
        (meta, imgs)
    }

    /// A fresh folder holding `a.bin`, a blob of three samples, and that file's bytes.
    fn sample_file(tag: &str) -> (TmpDir, PathBuf, Vec<u8>) {
        let d = tmpdir(tag);
        let p = d.join("a.bin");
        write_sample(&p, 3);
        let good = std::fs::read(&p).unwrap();
        (d, p, good)
    }

    fn sample(n: usize) -> (BlobMeta, Vec<Vec<u8>>) {
        let meta = BlobMeta {
            height: 4,
            width: 5,
            channels: 3,
            class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            labels: (0..n).map(|i| [0, 1, UNLABELED][i % 3]).collect(),
            sources: (0..n)
                .map(|i| format!("dir/ünïcode {i}.jpg").into())
                .collect(),
            note: "test".into(),
        };
        let imgs = (0..n).map(|i| vec![i as u8; 60]).collect();
        (meta, imgs)
    }

    #[test]
    fn round_trip() {
        let d = tmpdir("rt");
        let p = d.join("a.bin");
        let (meta, imgs) = write_sample(&p, 7);
        let b = Blob::open(&p).unwrap();
        assert_eq!(b.len(), 7);
        assert_eq!(b.dims(), (4, 5, 3));
        assert_eq!(b.labels(), &meta.labels[..]);
        assert_eq!(b.class_names(), vec!["cat", "dog"]);
        assert_eq!(b.note(), "test");
        for (i, img) in imgs.iter().enumerate() {
            assert_eq!(b.image(i), &img[..]);
            assert_eq!(b.source_bytes(i), &meta.sources[i][..]);
        }
        assert_eq!(b.header().payload_offset % 64, 0);
        assert_eq!(b.label_counts(), vec![3, 2, 2]);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(&*d).unwrap().count(), 1);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused() {
        let (d, _, good) = sample_file("flip");
        let q = d.join("b.bin");
        for len in 0..good.len() {
            std::fs::write(&q, &good[..len]).unwrap();
            assert!(Blob::open(&q).is_err(), "truncated to {len} accepted");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&q, &bad).unwrap();
            assert!(Blob::open(&q).is_err(), "flip at {at} accepted");
        }
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let d = tmpdir("unfinished");
        let p = d.join("a.bin");
        let (meta, imgs) = sample(3);
        let mut w = BlobWriter::create(&p, &meta).unwrap();
        w.push(&imgs[0]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&*d).unwrap().count(), 0);
    }

    /// Recomputes both CRCs, so a test can reach the checks behind them.
    fn reseal(b: &mut [u8]) {
        let po = u64_at(b, 48) as usize;
        let pc = crc32fast::hash(&b[po.min(b.len())..]);
        LE::write_u32(&mut b[56..60], pc);
        let hc = crc32fast::hash(&b[16..po.min(b.len())]);
        LE::write_u32(&mut b[12..16], hc);
    }

    #[test]
    fn inconsistent_fields_behind_valid_checksums_are_refused() {
        let (d, p, good) = sample_file("fields");
        let b = Blob::open(&p).unwrap();
        let (labels_at, offsets_at) = (b.labels_at, b.offsets_at);
        drop(b);
        let q = d.join("b.bin");
        let case = |f: &dyn Fn(&mut Vec<u8>), want: &str| {
            let mut x = good.clone();
            f(&mut x);
            reseal(&mut x);
            std::fs::write(&q, &x).unwrap();
            let e = Blob::open(&q).unwrap_err();
            assert!(e.contains(want), "expected {want:?} in {e:?}");
        };
        let put64 = |x: &mut Vec<u8>, at: usize, v: u64| LE::write_u64(&mut x[at..at + 8], v);
        let put32 = |x: &mut Vec<u8>, at: usize, v: u32| LE::write_u32(&mut x[at..at + 4], v);
        case(&|x| x[labels_at + 1] = 7, "label 7");
        case(
            &|x| put64(x, offsets_at + 8, 1000),
            "source path table is damaged",
        );
        case(
            &|x| put64(x, offsets_at + 16, 1),
            "source path table is damaged",
        );
        case(
            &|x| put64(x, 40, u64::MAX - 10),
            "runs past the payload offset",
        );
        case(&|x| put64(x, 16, u64::MAX), "overflow");
        case(&|x| put64(x, 16, 4), "truncated");
        case(&|x| put64(x, 16, 2), "more than its header accounts for");
        case(&|x| put32(x, 24, u32::MAX), "");
        case(&|x| put32(x, 32, 0), "channels");
        case(&|x| put32(x, 36, 255), "classes");
        case(&|x| put32(x, 36, 1), "");
        case(&|x| put64(x, 48, 65), "not a multiple of 64");
        case(&|x| put32(x, 64, 1 << 30), "cut short");
    }
}
