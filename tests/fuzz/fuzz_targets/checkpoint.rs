//! The checkpoint reader: any bytes are refused with `Err` or decoded into a checkpoint that is
//! consistent with its own hyperparameters. Each input is tried as it is and, so that mutations
//! can get past the checksums, again with both CRCs recomputed over it.
#![no_main]

use catdog::checkpoint::{check_compatible, decode, HEADER_LEN};
use catdog::config::Hyper;
use libfuzzer_sys::fuzz_target;

/// Recomputes the header CRC (bytes 156..160) and the trailing CRC over everything before it.
fn reseal(b: &mut [u8]) {
    if b.len() >= HEADER_LEN {
        let hc = crc32fast::hash(&b[..HEADER_LEN - 4]);
        b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&hc.to_le_bytes());
    }
    if b.len() >= HEADER_LEN + 4 {
        let body = b.len() - 4;
        let c = crc32fast::hash(&b[..body]);
        b[body..].copy_from_slice(&c.to_le_bytes());
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

fn check(data: &[u8]) {
    let Ok(ck) = decode(data) else { return };
    let shapes = ck
        .hyper
        .shapes()
        .expect("decode accepted unusable hyperparameters");
    assert_eq!(ck.params.len(), shapes.param_count());
    assert!(ck.velocity.is_empty() || ck.velocity.len() == ck.params.len());
    let _ = check_compatible(&ck, &Hyper::default());
    let _ = check_compatible(&ck, &ck.hyper);
}
