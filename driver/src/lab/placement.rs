//! Which core does each end's receive work: the lab's model of one machine or of two.
//!
//! A veth pair does the receiver's work on the *sender's* core: `veth_xmit` either calls
//! `netif_rx` (the frame joins the backlog of the current core) or, when the receiving end has
//! NAPI (an XDP program or GRO on it), schedules that NAPI on the current core. So with the
//! server pinned to one core and the client to another, each side's receive path is paid by
//! the other side's core; on two machines each side pays its own. [`Placement::PerSide`] moves
//! that work back, on both ends and for every server alike:
//!
//! - GRO on, so each end always has a NAPI instance (also when no XDP program is attached), and
//!   **threaded NAPI** with the instance's kernel thread pinned to the end's core: frames that
//!   take veth's NAPI path (native XDP on the end, or a sender without TSO) are processed
//!   there. The instance lives as long as GRO stays on, so attaching and detaching XDP (each
//!   `linerate serve` run) keeps the same thread and pinning.
//! - **RPS** (`rps_cpus` = the end's core on every receive queue) on an end whose peer
//!   transmits with TSO: veth then skips NAPI (such frames are not worth GRO) and calls
//!   `netif_rx`, which RPS queues to the end's core. In the lab that is the kernel end (the app
//!   end's kernel TCP and AF_XDP's generic transmit both leave with TSO on); the app end needs
//!   none, since the lab turns the kernel end's transmit offloads off, and RPS there would only
//!   add a second hop (NAPI thread -> own backlog) to every kernel server's receive.
//!
//! Promises: [`apply`] is idempotent and [`read_back`] reports what the kernel holds, not what
//! was asked. Everything lives on the veth ends, so deleting the namespaces removes it. Must
//! not: pin any thread but the NAPI threads of this lab's two interfaces.

use super::napi::{napi_instances, NapiInstance};
use super::{netns_run, LabError, NetnsEnter};

/// Where receive work runs in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// veth's own behaviour: on the core that sent the frame (one machine, shared receive work).
    SenderCore,
    /// Each end's receive work on its own core, as on two machines.
    PerSide { app_core: usize, kern_core: usize },
}

impl Placement {
    /// The core of the end in `ns`'s role, if this placement pins one.
    fn core(self, app_side: bool) -> Option<usize> {
        match self {
            Placement::SenderCore => None,
            Placement::PerSide { app_core, kern_core } => Some(if app_side { app_core } else { kern_core }),
        }
    }

    pub(crate) fn validate(self) -> Result<(), LabError> {
        if let Placement::PerSide { app_core, kern_core } = self {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if app_core.max(kern_core) >= cores.min(64) {
                return Err(LabError::InvalidConfig(format!(
                    "placement cores {app_core}/{kern_core}: this machine has cores 0..{}",
                    cores.min(64) - 1
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::SenderCore => write!(f, "one machine (receive work on the sending core)"),
            Placement::PerSide { app_core, kern_core } => write!(
                f,
                "two machines (app end's receive work on core {app_core}, kernel end's on core {kern_core}: \
                 threaded NAPI pinned, RPS where frames bypass NAPI)"
            ),
        }
    }
}

/// What one veth end holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPlacement {
    pub ifname: String,
    /// `rps_cpus` of each receive queue, as the kernel prints it (hex mask).
    pub rps_cpus: Vec<String>,
    /// `/sys/class/net/<if>/threaded`.
    pub threaded: bool,
    /// NAPI threads and the cores each may run on.
    pub napi_threads: Vec<(NapiInstance, Vec<usize>)>,
}

/// One end of the lab: its namespace, interface and role.
pub(crate) struct End<'a> {
    pub ns: &'a str,
    pub ifname: &'a str,
    pub app_side: bool,
    /// The other end, whose transmit offloads decide veth's path into this one.
    pub peer_ns: &'a str,
    pub peer_if: &'a str,
}

/// Applies `placement` to `end` (both ends are applied by the lab).
pub(crate) fn apply(placement: Placement, end: &End<'_>, queues: u32) -> Result<(), LabError> {
    let core = placement.core(end.app_side);
    // IPv4 TSO itself: 6.18's summary line also counts AccECN segmentation, which veth's
    // NAPI test does not.
    let peer_tso = match core {
        Some(_) => netns_run(end.peer_ns, "ethtool", &["-k", end.peer_if])?
            .lines()
            .any(|l| l.trim().starts_with("tx-tcp-segmentation: on")),
        None => false,
    };
    let mask = core.filter(|_| peer_tso).map_or(0u64, |c| 1u64 << c);
    for q in 0..queues {
        write_sys(
            end.ns,
            &format!("/sys/class/net/{}/queues/rx-{q}/rps_cpus", end.ifname),
            &format!("{mask:x}"),
        )?;
    }
    let Some(core) = core else {
        // Back to veth's defaults. Threaded mode first, while a NAPI instance still exists to
        // accept the write: otherwise the device stays threaded and the next instance (an XDP
        // attach) would get an unpinned thread. "No NAPI" (never placed) is fine.
        let _ = write_sys(end.ns, &format!("/sys/class/net/{}/threaded", end.ifname), "0");
        netns_run(end.ns, "ethtool", &["-K", end.ifname, "gro", "off"])?;
        return Ok(());
    };
    netns_run(end.ns, "ethtool", &["-K", end.ifname, "gro", "on"])?;
    write_sys(end.ns, &format!("/sys/class/net/{}/threaded", end.ifname), "1")?;
    for napi in napi_of(end)? {
        let pid = napi.pid.ok_or_else(|| {
            LabError::InvalidConfig(format!(
                "{}: NAPI {} has no thread after threaded=1",
                end.ifname, napi.id
            ))
        })?;
        pin(pid, core)?;
    }
    Ok(())
}

/// Reads what `end` holds.
pub(crate) fn read_back(end: &End<'_>, queues: u32) -> Result<EndPlacement, LabError> {
    let mut rps_cpus = Vec::new();
    for q in 0..queues {
        let path = format!("/sys/class/net/{}/queues/rx-{q}/rps_cpus", end.ifname);
        rps_cpus.push(netns_run(end.ns, "cat", &[&path])?.trim().to_owned());
    }
    let threaded = netns_run(end.ns, "cat", &[&format!("/sys/class/net/{}/threaded", end.ifname)])?;
    let mut napi_threads = Vec::new();
    for napi in napi_of(end)? {
        let cores = napi.pid.map(allowed_cores).transpose()?.unwrap_or_default();
        napi_threads.push((napi, cores));
    }
    Ok(EndPlacement {
        ifname: end.ifname.to_owned(),
        rps_cpus,
        threaded: threaded.trim() != "0",
        napi_threads,
    })
}

pub(crate) fn napi_of(end: &End<'_>) -> Result<Vec<NapiInstance>, LabError> {
    let err = |source| LabError::Netns { ns: end.ns.to_owned(), source };
    let _inside = NetnsEnter::enter(end.ns)?;
    let name = std::ffi::CString::new(end.ifname).map_err(|e| err(std::io::Error::other(e)))?;
    // SAFETY: a valid NUL-terminated name; looks the interface up in this thread's namespace.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    napi_instances(ifindex).map_err(err)
}

/// Writes `value` to a sysfs file of the namespace (`ip netns exec` mounts its own /sys).
fn write_sys(ns: &str, path: &str, value: &str) -> Result<(), LabError> {
    // Both arguments are built here from validated names, never from outside input.
    netns_run(ns, "sh", &["-c", &format!("echo {value} > {path}")]).map(drop)
}

fn pin(pid: u32, core: usize) -> Result<(), LabError> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity on a thread id we were told about.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(LabError::CommandFailed {
            command: format!("sched_setaffinity({pid}, core {core})"),
            stderr: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}

/// The cores thread `pid` may run on.
fn allowed_cores(pid: u32) -> Result<Vec<usize>, LabError> {
    // SAFETY: cpu_set_t is plain data that the kernel fills in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid cpu_set_t of the stated size.
    let rc = unsafe {
        libc::sched_getaffinity(pid as libc::pid_t, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
    };
    if rc != 0 {
        return Err(LabError::CommandFailed {
            command: format!("sched_getaffinity({pid})"),
            stderr: std::io::Error::last_os_error().to_string(),
        });
    }
    // SAFETY: CPU_ISSET reads the set only.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}
