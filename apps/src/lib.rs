//! linerate-app: the application layer of the `linerate` binary.
//!
//! [`http`] is the transport-independent HTTP/1.1 file server (a sans-I/O connection state
//! machine plus safe file access); [`kernel_server`] runs it on Linux kernel sockets with epoll,
//! which is both the baseline for benchmarks and the way the core is tested against real clients
//! before the linerate engine carries it.
//!
//! The rest is the `linerate` command line: [`bypass`] (XDP program + AF_XDP queues + one
//! engine, and the driver half of the run-to-completion loop), [`serve`] (the HTTP core on the
//! engine), [`client`] (`linerate get`, `linerate put`), [`control`] (the control socket behind
//! `linerate stats`), [`lab_cmd`] and [`demo`], wired up by [`cli`].

pub mod bypass;
pub mod cli;
pub mod client;
pub mod control;
pub mod demo;
pub mod http;
pub mod kernel_server;
pub mod lab_cmd;
pub mod serve;
