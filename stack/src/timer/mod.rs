//! Hierarchical timer wheel (placeholder: filled by the timer work).
