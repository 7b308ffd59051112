//! Placeholder: filled by the lab work.
