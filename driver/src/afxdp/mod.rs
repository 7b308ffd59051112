//! Placeholder: filled by the afxdp work.
