//! Any bytes as a TCP segment: view and parser never panic; a parsed segment re-emits to
//! something that parses back to the same representation (options in canonical form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{ChecksumMode, Ipv4Address, TcpPacket, TcpRepr};

const SRC: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const DST: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (packet.options(), packet.payload(), packet.verify_checksum(SRC, DST));
    let _ = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Compute);
    let Ok(repr) = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Skip) else {
        return;
    };
    let options_len = repr.options.emitted_len();
    assert!(options_len <= 40 && options_len % 4 == 0);
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), SRC, DST, ChecksumMode::Compute);
    let reparsed = TcpPacket::new_checked(&out[..]).expect("emitted header is consistent");
    let expected = TcpRepr { options: repr.options.canonical(), ..repr };
    assert_eq!(TcpRepr::parse(&reparsed, SRC, DST, ChecksumMode::Compute), Ok(expected));
});
