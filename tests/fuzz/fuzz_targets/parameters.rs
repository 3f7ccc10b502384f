//! The `parameters.raw` reader (`parse_raw`, the checks of `read_raw`), for a small network
//! (image 8, widths 16/16/16, fc1 16: 5,377 parameters, 21,508 bytes) and for a tiny hand-made
//! geometry (55 parameters, 220 bytes), so that the exact sizes are reachable. Also parses the
//! same bytes into a buffer that is too short, which must be `Err` too.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::parameters(data);
});
