//! Spec loading and validation (`berth_schema::load_str`), then everything
//! berth renders from a valid machine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth_engine::fuzzing::load_spec(data);
});
