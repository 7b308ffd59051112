//! Any bytes as an Ethernet frame: the pretty printer never panics.
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::pretty_frame;

fuzz_target!(|data: &[u8]| {
    let mut text = String::new();
    write!(text, "{}", pretty_frame(data)).expect("formatting into a String cannot fail");
    assert!(!text.is_empty());
});
