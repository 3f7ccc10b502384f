//! The dataset blob reader: any bytes are refused with `Err` or accepted as a blob whose every
//! accessor stays in bounds. Each input is tried as it is and, so that mutations can get past
//! the checksums, again with both CRCs recomputed over it.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::blob(data);
});
