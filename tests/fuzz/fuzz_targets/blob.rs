//! The dataset blob reader: any bytes are refused with `Err` or accepted as a blob whose every
//! accessor stays in bounds. Each input is tried as it is and, so that mutations can get past
//! the checksums, again with both CRCs recomputed over it.
#![no_main]

use catdog::blob::{Blob, Verify};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// Recomputes the header/metadata CRC and the payload CRC from the (possibly bogus) payload offset.
fn reseal(b: &mut [u8]) {
    if b.len() < 64 {
        return;
    }
    let po = (u64::from_le_bytes(b[48..56].try_into().unwrap()) as usize).clamp(16, b.len());
    let pc = crc32fast::hash(&b[po..]);
    b[56..60].copy_from_slice(&pc.to_le_bytes());
    let hc = crc32fast::hash(&b[16..po]);
    b[12..16].copy_from_slice(&hc.to_le_bytes());
}

fn check(data: &[u8]) {
    for verify in [Verify::All, Verify::MetadataOnly] {
        let Ok(b) = Blob::from_bytes(data, Path::new("fuzz.bin"), verify) else {
            continue;
        };
        let (h, w, c) = b.dims();
        assert_eq!(b.image_len(), h * w * c);
        assert_eq!(b.labels().len(), b.len());
        assert_eq!(b.payload().len(), b.len() * b.image_len());
        for i in 0..b.len() {
            assert_eq!(b.image(i).len(), b.image_len());
            std::hint::black_box(b.source(i));
        }
        let names = b.class_names();
        let counts = b.label_counts();
        assert_eq!(counts.len(), names.len() + 1);
        assert_eq!(counts.iter().sum::<usize>(), b.len());
        std::hint::black_box((b.note(), b.header(), b.verify_payload().is_ok()));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    if sealed != data {
        check(&sealed);
    }
});
