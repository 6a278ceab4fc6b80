#![no_main]

use shoal_fuzz_props::{forwarded_for, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| forwarded_for::check(data));
