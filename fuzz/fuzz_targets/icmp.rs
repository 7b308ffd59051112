//! Any bytes: the ICMPv4 view and parser never panic; a parsed message round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{ChecksumMode, Icmpv4Packet, Icmpv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    let _ = Icmpv4Repr::parse(&packet, ChecksumMode::Compute);
    let Ok(repr) = Icmpv4Repr::parse(&packet, ChecksumMode::Skip) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), ChecksumMode::Compute);
    let reparsed = Icmpv4Packet::new_checked(&out[..]).expect("emitted message is long enough");
    assert_eq!(Icmpv4Repr::parse(&reparsed, ChecksumMode::Compute), Ok(repr));
});
