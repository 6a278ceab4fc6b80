#![no_main]

use shoal_fuzz_props::{blocks_wire, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| blocks_wire::check(data));
