//! Where the two ends of a benchmark live: the netns lab on this machine, or a real NIC here
//! with a peer machine running `linerate-bench peer`.
//!
//! Owns the placement of processes: servers start on the "server side" (the lab's app
//! namespace, or this machine), load jobs run on the "client side" (a child process in the
//! lab's kernel namespace, or a job sent to the peer). It also owns the one kernel knob the
//! comparison needs: the server address is configured in the server side's kernel only while
//! a kernel server runs, and removed while linerate owns it. Must not: touch addresses or
//! interfaces other than the ones it was given (in the lab, only 198.18.0.0/15 in namespaces
//! it created).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use linerate_driver::lab::{netns_command, LabConfig, LabGuard, Placement, PREFIX_LEN};

use crate::load::{LoadJob, LoadResult};

/// How to reach the other machine in NIC mode.
#[derive(Debug, Clone)]
pub struct NicConfig {
    /// The benchmark interface on this machine (dedicated to benchmarking: its address is
    /// added and removed by the harness).
    pub iface: String,
    /// The server's address on `iface`.
    pub server_ip: Ipv4Addr,
    pub prefix: u8,
    /// The peer's benchmark address (the client side, for the bypass client's `--ip`).
    pub client_ip: Ipv4Addr,
    /// The peer's interface name (for the bypass client).
    pub client_iface: String,
    /// Where `linerate-bench peer --listen` accepts jobs.
    pub control: SocketAddr,
}

#[derive(Debug)]
pub enum Topology {
    Lab(LabGuard),
    Nic(NicConfig),
}

impl Topology {
    /// Builds a private lab named after this process, with each side's receive work placed as
    /// `placement` says (see `linerate_driver::lab::Placement`).
    pub fn lab(placement: Placement) -> anyhow::Result<Topology> {
        let name = format!("bench-{}", std::process::id());
        let guard = LabGuard::up(LabConfig { placement, ..LabConfig::new(&name) })
            .context("cannot build the netns lab (are we root?)")?;
        for ns in [guard.kern_ns(), guard.app_ns()] {
            // Many short connections: reuse client ports quickly and use the whole range.
            let sysctls = ["-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1"];
            linerate_driver::lab::netns_run(ns, "sysctl", &sysctls)?;
        }
        Ok(Topology::Lab(guard))
    }

    pub fn describe(&self) -> String {
        match self {
            Topology::Lab(lab) => format!(
                "lab (namespaces {} / {}), placement: {}{}",
                lab.app_ns(),
                lab.kern_ns(),
                lab.config().placement,
                placement_state(lab)
            ),
            Topology::Nic(n) => format!("nic {} ({} -> peer {})", n.iface, n.server_ip, n.control),
        }
    }

    pub fn server_ip(&self) -> Ipv4Addr {
        match self {
            Topology::Lab(lab) => lab.app_addr(),
            Topology::Nic(n) => n.server_ip,
        }
    }

    fn prefix(&self) -> u8 {
        match self {
            Topology::Lab(_) => PREFIX_LEN,
            Topology::Nic(n) => n.prefix,
        }
    }

    pub fn server_iface(&self) -> String {
        match self {
            Topology::Lab(lab) => lab.app_if().to_owned(),
            Topology::Nic(n) => n.iface.clone(),
        }
    }

    /// `ADDR/PREFIX` for `linerate serve --ip`.
    pub fn server_cidr(&self) -> String {
        format!("{}/{}", self.server_ip(), self.prefix())
    }

    /// (interface, `ADDR/PREFIX`) the bypass client uses on the client side.
    pub fn client_endpoint(&self) -> (String, String) {
        match self {
            Topology::Lab(lab) => (lab.kern_if().to_owned(), format!("{}/{}", lab.kern_addr(), PREFIX_LEN)),
            Topology::Nic(n) => (n.client_iface.clone(), format!("{}/{}", n.client_ip, n.prefix)),
        }
    }

    /// A command that runs `program` on the server side.
    pub fn server_command(&self, program: &str) -> Command {
        match self {
            Topology::Lab(lab) => netns_command(lab.app_ns(), program),
            Topology::Nic(_) => Command::new(program),
        }
    }

    /// Puts the lab's receive work on the sending core (`busy_polling`) or back to the
    /// configured placement. Threads that never sleep (the raw reflector and generator, the
    /// single-flow engines) leave a pinned NAPI thread on their core only the scheduler's fair
    /// share, in slices of milliseconds, whereas a NIC's receive preempts them at once; veth's own
    /// placement runs it at once (inside the sender's kick). No-op on a real NIC.
    pub fn busy_polling(&self, busy_polling: bool) -> anyhow::Result<()> {
        let Topology::Lab(lab) = self else { return Ok(()) };
        let result =
            if busy_polling { lab.apply_placement_as(Placement::SenderCore) } else { lab.apply_placement() };
        result.context("cannot change the lab's placement")
    }

    /// On-CPU seconds so far of the server end's NAPI threads: with the two-machine placement
    /// every frame towards the server (linerate's XDP receive, nginx's GRO and TCP receive) is
    /// processed there, on the server's core. Zero when the end has no NAPI thread (the
    /// one-machine placement, or a real NIC, whose interrupt work this does not see).
    pub fn server_napi_cpu_secs(&self) -> f64 {
        let Topology::Lab(lab) = self else { return 0.0 };
        let threads = lab.napi_instances(true).unwrap_or_default();
        threads.iter().filter_map(|n| n.pid).map(crate::sys::thread_runtime_secs).sum()
    }

    /// Configures (or removes) the server address in the server side's kernel.
    pub fn kernel_owns_server_ip(&self, owned: bool) -> anyhow::Result<()> {
        let (cidr, iface) = (self.server_cidr(), self.server_iface());
        set_address(|| self.server_command("ip"), &cidr, &iface, owned)
    }

    /// Removes any XDP program from the server interface. A bypass server killed before its
    /// own cleanup leaves its program attached, which would steer the kernel servers' traffic
    /// into a socket nobody reads.
    pub fn detach_server_xdp(&self) -> anyhow::Result<()> {
        let iface = self.server_iface();
        let out = self.server_command("ip").args(["link", "set", "dev", &iface, "xdp", "off"]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "ip link set dev {iface} xdp off: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Configures (or removes) the client address in the lab's kernel namespace, which the
    /// bypass client takes over while it runs. On a real NIC the peer's operator decides.
    pub fn kernel_owns_client_ip(&self, owned: bool) -> anyhow::Result<()> {
        let Topology::Lab(lab) = self else { return Ok(()) };
        let cidr = format!("{}/{}", lab.kern_addr(), PREFIX_LEN);
        set_address(|| netns_command(lab.kern_ns(), "ip"), &cidr, lab.kern_if(), owned)
    }

    /// Runs `job` on the client side, pinned to `core`.
    pub fn run_load(&self, job: &LoadJob, core: usize) -> anyhow::Result<LoadResult> {
        let json = serde_json::to_string(job)?;
        match self {
            Topology::Lab(lab) => {
                let exe = std::env::current_exe().context("cannot find our own executable")?;
                let mut cmd = netns_command(lab.kern_ns(), &exe.to_string_lossy());
                cmd.args(["load", "--core", &core.to_string(), &json]);
                let out = cmd.output().context("cannot start the load process")?;
                anyhow::ensure!(
                    out.status.success(),
                    "load job failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Ok(serde_json::from_slice(&out.stdout).context("load process printed no result")?)
            }
            Topology::Nic(n) => remote_job(n.control, &json, core),
        }
    }
}

/// What the kernel holds for the lab's placement, as `; <if>: rps <mask>, NAPI thread <pid> on
/// cores [..]` per end (read back, not assumed); empty for the one-machine placement.
fn placement_state(lab: &LabGuard) -> String {
    if lab.config().placement == Placement::SenderCore {
        return String::new();
    }
    match lab.placement_state() {
        Ok(ends) => ends
            .iter()
            .map(|e| {
                let threads: Vec<String> = e
                    .napi_threads
                    .iter()
                    .map(|(n, cores)| {
                        format!("NAPI {} thread {} on cores {cores:?}", n.id, n.pid.unwrap_or(0))
                    })
                    .collect();
                format!("; {}: rps_cpus {}, {}", e.ifname, e.rps_cpus.join(","), threads.join(", "))
            })
            .collect(),
        Err(e) => format!("; cannot read the placement back: {e}"),
    }
}

/// Makes `cidr` present on `iface` or absent from it, whichever `owned` says; `ip` builds an
/// `ip` command on the right side.
fn set_address(ip: impl Fn() -> Command, cidr: &str, iface: &str, owned: bool) -> anyhow::Result<()> {
    let show = ip().args(["-o", "-4", "addr", "show", "dev", iface]).output().context("cannot run ip")?;
    let present = String::from_utf8_lossy(&show.stdout).split_whitespace().any(|w| w == cidr);
    if present == owned {
        return Ok(());
    }
    let verb = if owned { "add" } else { "del" };
    let out = ip().args(["addr", verb, cidr, "dev", iface]).output().context("cannot run ip")?;
    anyhow::ensure!(
        out.status.success(),
        "ip addr {verb} {cidr} dev {iface}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The peer protocol: one JSON line `{"core":N,"job":{...}}` in, one JSON line out (either a
/// [`LoadResult`] or `{"error":"..."}`).
fn remote_job(control: SocketAddr, job_json: &str, core: usize) -> anyhow::Result<LoadResult> {
    let mut s = TcpStream::connect_timeout(&control, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the peer at {control}: is `linerate-bench peer` running?"))?;
    writeln!(s, "{{\"core\":{core},\"job\":{job_json}}}")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(&line).context("peer sent no valid reply")?;
    if let Some(e) = v.get("error") {
        anyhow::bail!("peer: {e}");
    }
    Ok(serde_json::from_value(v)?)
}

/// `linerate-bench peer`: serves load jobs one at a time, forever (or until killed).
pub fn serve_peer(listen: SocketAddr) -> anyhow::Result<()> {
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    println!("linerate-bench peer: waiting for jobs on {listen}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        let reply = match peer_job(&line) {
            Ok(r) => serde_json::to_string(&r)?,
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }).to_string(),
        };
        writeln!(stream, "{reply}")?;
    }
    Ok(())
}

fn peer_job(line: &str) -> anyhow::Result<LoadResult> {
    #[derive(serde::Deserialize)]
    struct Request {
        core: usize,
        job: LoadJob,
    }
    let req: Request = serde_json::from_str(line).context("bad job line")?;
    // Run in a thread so its pinning does not stick to the accept loop.
    std::thread::spawn(move || crate::load::run_job(&req.job, Some(req.core)))
        .join()
        .map_err(|_| anyhow::anyhow!("job panicked"))?
}
