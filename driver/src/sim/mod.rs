//! Deterministic simulated link (placeholder: filled by the simulation work).
