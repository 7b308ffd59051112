//! Placeholder: filled by the pcap work.
