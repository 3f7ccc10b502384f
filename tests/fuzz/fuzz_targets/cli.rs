//! The `model` command line: the fuzz input is split on NUL and ASCII whitespace into arguments
//! (lossy UTF-8) after "model"; parsing, and for `train` the checks the binary makes before it
//! touches a file (`hyper`, `recipe`, `Hyper::shapes`), must return `Ok` or `Err`, never panic.
#![no_main]

use catdog::cli::{hyper, recipe, Cli, Command};
use clap::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = std::iter::once("model".to_string()).chain(
        data.split(|b| *b == 0 || b.is_ascii_whitespace())
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    let Ok(cli) = Cli::try_parse_from(args) else {
        return;
    };
    match cli.command {
        Some(Command::Train(a)) => {
            // As `train_cmd` in main.rs.
            if let Ok(mut h) = hyper(&a.arch, 128, a.batch_size) {
                h.epochs = a.epochs;
                h.lr = a.lr;
                h.seed = a.seed;
                let _ = h.shapes();
            }
            let _ = recipe(&a);
        }
        Some(Command::Eval(a)) => {
            if let Ok(h) = hyper(&a.arch, 128, a.batch_size) {
                let _ = h.shapes();
            }
        }
        Some(Command::Predict(a)) => {
            if let Ok(h) = hyper(&a.arch, 128, a.batch_size) {
                let _ = h.shapes();
            }
        }
        Some(Command::Bench(a)) => {
            if let Ok(h) = hyper(&a.arch, a.image, a.batch_size) {
                let _ = h.shapes();
            }
        }
        None => {}
    }
});
