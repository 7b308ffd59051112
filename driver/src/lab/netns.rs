//! Running things inside a named network namespace: a command (`ip netns exec`) or the calling
//! thread itself (`setns(2)` on `/run/netns/<name>`).
//!
//! Owns: nothing beyond the saved namespace of an entered thread. Promises: [`NetnsEnter`]
//! returns the thread to its original namespace on drop, and cannot leave its thread (it is not
//! `Send`). Must not: touch other threads' namespaces.

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};

use super::LabError;

/// `ip netns exec <ns> <program>`: add arguments, then run it.
pub fn netns_command(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// Runs `program args...` inside `ns` and returns its stdout; a non-zero exit is an error that
/// quotes the command and the first line of its stderr.
pub fn netns_run(ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    let mut cmd = netns_command(ns, program);
    cmd.args(args);
    let described = format!("ip netns exec {ns} {program} {}", args.join(" "));
    checked_output(cmd, described)
}

/// Runs `cmd`, failing with a readable error when it cannot start or exits non-zero.
pub(crate) fn checked_output(mut cmd: Command, described: String) -> Result<String, LabError> {
    let output: Output =
        cmd.output().map_err(|e| LabError::ToolMissing { command: described.clone(), source: e })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first =
            stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no error output)").trim().to_owned();
        return Err(LabError::CommandFailed { command: described, stderr: first });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The calling thread, moved into a network namespace until this value drops.
///
/// Sockets created meanwhile (AF_XDP sockets, BPF links) stay in that namespace for their whole
/// life, whatever thread uses them later.
#[derive(Debug)]
pub struct NetnsEnter {
    original: File,
    // setns affects only the calling thread, so the guard must stay on it.
    _not_send: PhantomData<*const ()>,
}

impl NetnsEnter {
    /// Moves the calling thread into `/run/netns/<ns>`.
    pub fn enter(ns: &str) -> Result<NetnsEnter, LabError> {
        let err = |source| LabError::Netns { ns: ns.to_owned(), source };
        let original = File::open("/proc/thread-self/ns/net").map_err(err)?;
        let target = File::open(format!("/run/netns/{ns}")).map_err(err)?;
        // SAFETY: setns on a valid namespace descriptor; affects only this thread.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        Ok(NetnsEnter { original, _not_send: PhantomData })
    }
}

impl Drop for NetnsEnter {
    fn drop(&mut self) {
        // SAFETY: setns back to the descriptor saved at entry; affects only this thread.
        let ret = unsafe { libc::setns(self.original.as_raw_fd(), libc::CLONE_NEWNET) };
        // Staying in the wrong namespace would silently misdirect every later socket.
        assert_eq!(ret, 0, "could not return the thread to its original network namespace");
    }
}
