#![no_main]

use shoal_fuzz_props::{relay_info, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_info::check(data));
