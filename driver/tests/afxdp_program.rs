//! The steering program loads and attaches in native and generic mode on veth, refuses to take
//! over an interface that already has a program, and is gone when dropped or when its holder
//! process is killed. Needs root.

mod afxdp_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use afxdp_util::unique;
use linerate_driver::afxdp::{AfXdpError, XdpMode, XdpProgram};
use linerate_driver::lab::{LabConfig, LabGuard};

fn link_details(lab: &LabGuard) -> String {
    lab.exec_app("ip", &["-d", "link", "show", "dev", lab.app_if()]).expect("ip link show")
}

fn attach_and_drop(mode: XdpMode, tag: &str, shown_as: &str) {
    let lab = LabGuard::up(LabConfig::new(&unique(tag))).expect("lab up");
    {
        let _inside = lab.enter_app().expect("enter app namespace");
        let program = XdpProgram::attach(lab.app_if(), lab.app_addr(), mode).expect("attach");
        assert_eq!(program.mode(), if mode == XdpMode::Auto { XdpMode::Native } else { mode });
        let details = link_details(&lab);
        assert!(details.contains(shown_as) && details.contains("prog/xdp"), "{details}");
        assert!(lab.status().expect("status").app_xdp);

        // A second program on the same interface is refused with an actionable message.
        let err = XdpProgram::attach(lab.app_if(), lab.app_addr(), mode).expect_err("second attach");
        assert!(matches!(err, AfXdpError::ProgramAlreadyAttached { .. }), "{err}");
        assert!(err.to_string().contains("xdp off"), "{err}");
    }
    let details = link_details(&lab);
    assert!(!details.contains("prog/xdp"), "program still attached after drop: {details}");
}

#[test]
fn native_attach_detaches_on_drop() {
    attach_and_drop(XdpMode::Native, "xn", "xdp ");
}

#[test]
fn generic_attach_detaches_on_drop() {
    attach_and_drop(XdpMode::Generic, "xg", "xdpgeneric");
}

#[test]
fn auto_mode_picks_native_on_veth() {
    attach_and_drop(XdpMode::Auto, "xa", "xdp ");
}

#[test]
fn killed_holder_leaves_no_program_behind() {
    let lab = LabGuard::up(LabConfig::new(&unique("xk"))).expect("lab up");
    let addr = lab.app_addr().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lr-xdp-hold"))
        .args([lab.app_ns(), lab.app_if(), &addr, "native"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn lr-xdp-hold");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "attached native");
    assert!(lab.status().expect("status").app_xdp);
    child.kill().expect("SIGKILL the holder");
    child.wait().expect("reap");
    // The link dies with the process's descriptors; the kernel releases it synchronously on exit.
    let details = link_details(&lab);
    assert!(!details.contains("prog/xdp"), "program survived its holder: {details}");
}

#[test]
fn errors_name_the_problem() {
    let lab = LabGuard::up(LabConfig::new(&unique("xe"))).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let err =
        XdpProgram::attach("lr-missing0", lab.app_addr(), XdpMode::Native).expect_err("no such interface");
    assert_eq!(err.to_string().lines().count(), 1);
    assert!(err.to_string().contains("interface lr-missing0 not found"), "{err}");
}

/// Loads a two-instruction `XDP_PASS` program directly with bpf(2): "someone else's" program.
fn load_foreign_pass_program() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095]; // r0 = XDP_PASS; exit
    let license = c"GPL";
    let mut attr = [0u8; 72];
    attr[0..4].copy_from_slice(&6u32.to_ne_bytes()); // BPF_PROG_TYPE_XDP
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: `attr` is a BPF_PROG_LOAD attribute block whose pointers outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_mut_ptr(), attr.len() as u32) };
    assert!(fd >= 0, "load foreign program: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel returned a fresh descriptor.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

/// Attaches `prog` the old way, through rtnetlink (IFLA_XDP), in the calling thread's namespace.
fn netlink_attach(ifindex: u32, prog: &std::os::fd::OwnedFd, flags: u32) {
    use std::os::fd::AsRawFd;
    fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
    }
    let mut xdp = Vec::new();
    attr(&mut xdp, 1, &prog.as_raw_fd().to_ne_bytes()); // IFLA_XDP_FD
    attr(&mut xdp, 3, &flags.to_ne_bytes()); // IFLA_XDP_FLAGS
    let mut body = vec![0u8; 16]; // struct ifinfomsg
    body[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    attr(&mut body, 43 | (1 << 15), &xdp); // IFLA_XDP, nested
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&19u16.to_ne_bytes()); // RTM_SETLINK
    msg.extend_from_slice(&(0x1u16 | 0x4).to_ne_bytes()); // NLM_F_REQUEST | NLM_F_ACK
    msg.extend_from_slice(&[0u8; 8]); // seq, pid
    msg.extend_from_slice(&body);
    // SAFETY: plain socket/send/recv on buffers we own.
    unsafe {
        let sock = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE);
        assert!(sock >= 0);
        assert_eq!(libc::send(sock, msg.as_ptr().cast(), msg.len(), 0), msg.len() as isize);
        let mut ack = [0u8; 256];
        let n = libc::recv(sock, ack.as_mut_ptr().cast(), ack.len(), 0);
        libc::close(sock);
        assert!(n >= 20, "netlink ack");
        let error = i32::from_ne_bytes(ack[16..20].try_into().expect("4 bytes"));
        assert_eq!(error, 0, "netlink attach refused: {}", std::io::Error::from_raw_os_error(-error));
    }
}

#[test]
fn a_program_attached_by_someone_else_is_reported_not_replaced() {
    let lab = LabGuard::up(LabConfig::new(&unique("xf"))).expect("lab up");
    let _inside = lab.enter_app().expect("enter app namespace");
    let foreign = load_foreign_pass_program();
    let ifindex = linerate_driver::afxdp::interface_index(lab.app_if()).expect("ifindex");
    netlink_attach(ifindex, &foreign, 2); // XDP_FLAGS_SKB_MODE
    drop(foreign); // the interface keeps its own reference, as after the other tool exited
    for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
        let err = XdpProgram::attach(lab.app_if(), lab.app_addr(), mode).expect_err("interface is taken");
        assert!(matches!(err, AfXdpError::ProgramAlreadyAttached { .. }), "{mode:?}: {err}");
        assert!(err.to_string().contains("ip link set dev lr-app xdp off"), "{err}");
    }
    assert!(link_details(&lab).contains("xdpgeneric"), "the foreign program is still there");
    // Once its owner removes it, as the message says, we can attach.
    lab.exec_app("ip", &["link", "set", "dev", lab.app_if(), "xdpgeneric", "off"]).expect("remove foreign");
    XdpProgram::attach(lab.app_if(), lab.app_addr(), XdpMode::Auto).expect("attach after removal");
}
