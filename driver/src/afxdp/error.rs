//! The one error type of the AF_XDP driver.
//!
//! Every variant's `Display` is a single line that names what is missing and how to fix it; a raw
//! errno never reaches the user alone (the catch-all [`AfXdpError::Os`] names the failing step).

use std::io;

/// Why opening or running an AF_XDP device failed.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    #[error("{what} was refused: AF_XDP needs CAP_NET_ADMIN and CAP_BPF (AF_PACKET needs CAP_NET_RAW): run as root")]
    PermissionDenied { what: &'static str },

    #[error("this kernel has no AF_XDP sockets: use Linux 5.4+ built with CONFIG_XDP_SOCKETS=y")]
    Unsupported,

    #[error("interface {0} not found in this network namespace (enter the right one, e.g. lab::NetnsEnter)")]
    InterfaceNotFound(String),

    #[error("interface {ifname} has {queues} queue(s); queue {queue} does not exist")]
    NoSuchQueue { ifname: String, queue: u32, queues: u32 },

    #[error("kernel refused the XDP program: {0}")]
    ProgramRejected(String),

    #[error(
        "interface {ifname} already has an XDP program attached by another tool: inspect it with \
         `ip -d link show dev {ifname}`, remove it with `ip link set dev {ifname} xdp off` (or \
         `xdpgeneric off`, as listed)"
    )]
    ProgramAlreadyAttached { ifname: String },

    #[error("interface {ifname} does not accept an XDP program in {mode} mode: {source}")]
    AttachFailed { ifname: String, mode: &'static str, source: io::Error },

    #[error("interface {ifname} has no zero-copy AF_XDP support: use BindMode::Copy or BindMode::Auto")]
    ZeroCopyUnsupported { ifname: String },

    #[error(
        "queue {queue} of {ifname} is busy: another AF_XDP socket is bound to it (or was closed \
         moments ago); close it and retry"
    )]
    QueueBusy { ifname: String, queue: u32 },

    #[error("the kernel could not pin {bytes} bytes of UMEM: raise `ulimit -l` or run as root")]
    MemoryLock { bytes: usize },

    #[error("invalid AF_XDP configuration: {0}")]
    InvalidConfig(String),

    #[error("{what} failed: {source}")]
    Os { what: &'static str, source: io::Error },
}

impl AfXdpError {
    /// Wraps the current `errno` with the step that failed, mapping permission errors to the
    /// actionable variant.
    pub(crate) fn last_os(what: &'static str) -> Self {
        Self::os(what, io::Error::last_os_error())
    }

    pub(crate) fn os(what: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => AfXdpError::PermissionDenied { what },
            _ => AfXdpError::Os { what, source },
        }
    }
}
