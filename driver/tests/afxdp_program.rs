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
