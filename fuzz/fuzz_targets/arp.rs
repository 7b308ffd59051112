//! Any bytes: the ARP view and parser never panic; a parsed packet round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (packet.source_hardware_addr(), packet.target_protocol_addr());
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut out = [0u8; ArpRepr::LEN];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &data[..ArpRepr::LEN]);
});
