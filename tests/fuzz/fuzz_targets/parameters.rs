//! The `parameters.raw` reader, for a small network (image 8, widths 16/16/16, fc1 16: 5,377
//! parameters, 21,508 bytes) so that the exact size is reachable. Also parses the same bytes
//! into a buffer that is too short, which must be `Err` too.
#![no_main]

use catdog::config::Hyper;
use catdog::parameters::parse_raw;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let shapes = Hyper {
        image: 8,
        widths: [16, 16, 16],
        fc1: 16,
        ..Hyper::default()
    }
    .shapes()
    .unwrap();
    let n = shapes.param_count();
    let mut params = vec![0.0f32; n + 1];
    if parse_raw(data, &shapes, &mut params).is_ok() {
        assert_eq!(data.len(), 4 * n);
        assert!(params[..n].iter().all(|v| v.is_finite()));
    }
    let mut short = vec![0.0f32; n - 1];
    assert!(parse_raw(data, &shapes, &mut short).is_err());
});
