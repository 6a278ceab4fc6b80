#![no_main]

use shoal_fuzz_props::{bitfield, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bitfield::check(data));
