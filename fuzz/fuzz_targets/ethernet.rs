//! Any bytes: the Ethernet view never panics, and a parsed header re-emits to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linerate_stack::wire::{EthernetFrame, EthernetRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let repr = EthernetRepr::parse(&frame).expect("a checked frame always parses");
    let _ = frame.payload();
    let mut out = [0u8; EthernetRepr::HEADER_LEN];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &data[..EthernetRepr::HEADER_LEN]);
});
