//! Any bytes as a TCP options area: the iterator and the parser never panic and agree, and
//! parsed options survive emit + parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{TcpOptionIter, TcpOptions};

fuzz_target!(|data: &[u8]| {
    let iter_ok = TcpOptionIter::new(data).all(|o| o.is_ok());
    let parsed = TcpOptions::parse(data);
    assert_eq!(iter_ok, parsed.is_ok());
    let Ok(options) = parsed else {
        return;
    };
    let mut out = [0u8; 40];
    let len = options.emit(&mut out);
    assert_eq!(len, options.emitted_len());
    assert_eq!(TcpOptions::parse(&out[..len]), Ok(options.canonical()));
});
