//! `linerate lab up|status|down` from the command line: builds a lab with impairments, reports
//! it, removes it, and refuses bad settings with a one-line error. Run as root.

use std::process::Command;

fn lab(args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_linerate"))
        .arg("lab")
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Removes the lab even if an assertion fails.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = lab(&["down", "--name", &self.0]);
    }
}

#[test]
fn lab_up_status_down() {
    let name = format!("tcli-{}", std::process::id());
    let _down = Down(name.clone());
    let (ok, text) = lab(&["up", "--name", &name, "--queues", "2", "--loss", "1", "--rate", "100000000"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("lr-{name}-app")), "{text}");
    let (ok, text) = lab(&["status", "--name", &name]);
    assert!(ok && text.contains(": up:"), "{text}");
    let rules = Command::new("ip")
        .args(["netns", "exec", &format!("lr-{name}-kern"), "iptables", "-S"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rules.stdout).contains("statistic"), "loss rule missing");
    let (ok, text) = lab(&["down", "--name", &name]);
    assert!(ok, "{text}");
    let (ok, text) = lab(&["status", "--name", &name]);
    assert!(ok && text.contains(": down:"), "{text}");

    let (ok, text) = lab(&["up", "--name", "Bad_Name"]);
    assert!(
        !ok && text.starts_with("linerate: error: invalid lab name") && text.lines().count() == 1,
        "{text}"
    );
    let (ok, text) = lab(&["up", "--name", &name, "--loss", "150"]);
    assert!(!ok && text.contains("--loss 150"), "{text}");
}
