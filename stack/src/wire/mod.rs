//! Wire codecs (placeholder: filled by the wire-codec work).
