#![no_main]

use shoal_fuzz_props::{share_link, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| share_link::check(data));
