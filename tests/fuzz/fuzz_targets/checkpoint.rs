//! The checkpoint reader (see `checks.rs`: as is, resealed, and sized to its header and resealed):
//! any bytes are refused with `Err` or decoded into a checkpoint consistent with its own
//! hyperparameters.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::checkpoint(data);
});
