//! linerate-driver: how frames reach the engine.
//!
//! Implementations of [`linerate_stack::device::Device`]: the deterministic simulated link
//! ([`sim`]) used by every protocol test and AF_XDP ([`afxdp`]) for real NICs; pcap capture of any
//! link ([`pcap`]); and the network-namespace lab ([`lab`]) that puts the Linux kernel on the
//! other end of a veth pair.

pub mod afxdp;
pub mod lab;
pub mod pcap;
pub mod shard;
pub mod sim;
