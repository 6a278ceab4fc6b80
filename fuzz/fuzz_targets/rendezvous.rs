#![no_main]

use shoal_fuzz_props::{rendezvous, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rendezvous::check(data));
