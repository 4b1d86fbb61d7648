#![no_main]
use libfuzzer_sys::fuzz_target;

// TODO(owner): fill in.
fuzz_target!(|data: &[u8]| {
    let _ = data;
});
