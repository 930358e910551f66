#![no_main]
//! Go build info read from the fuzzer's bytes as an ELF, Mach-O or PE file, in memory:
//! no panic, no huge allocation, and what is found prints and parses back the same.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rules_ko::fuzzing::buildinfo(data));
