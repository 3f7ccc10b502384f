//! The `model` command line: the fuzz input is split on NUL and ASCII whitespace into arguments
//! (lossy UTF-8) after "model"; parsing, and for `train` the checks the binary makes before it
//! touches a file (`hyper`, `recipe`, `Hyper::shapes`), must return `Ok` or `Err`, never panic.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::cli(data);
});
