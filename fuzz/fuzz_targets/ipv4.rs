//! Any bytes: the IPv4 view and parser never panic (both checksum modes); a parsed header
//! round-trips through emit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{ChecksumMode, Ipv4Packet, Ipv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (packet.payload(), packet.options(), packet.verify_checksum());
    let _ = Ipv4Repr::parse(&packet, ChecksumMode::Compute);
    let Ok(repr) = Ipv4Repr::parse(&packet, ChecksumMode::Skip) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), ChecksumMode::Compute);
    let reparsed = Ipv4Packet::new_checked(&out[..]).expect("emitted header is consistent");
    assert_eq!(Ipv4Repr::parse(&reparsed, ChecksumMode::Compute), Ok(repr));
});
