//! The XDP steering program: raw eBPF bytecode that sends our frames to the AF_XDP sockets and
//! passes everything else to the kernel.
//!
//! Owns: the instruction template, its loading (`BPF_PROG_LOAD`), the XSKMAP (rx queue index →
//! socket) and the attachment. Promises: only IPv4 TCP and ICMP addressed to our IPv4 address, and
//! ARP whose target protocol address is ours, are redirected; every other frame — and every frame
//! arriving on a queue with no socket — gets `XDP_PASS`, so a real NIC keeps its SSH session. Every
//! packet read is bounds-checked against `data_end` first, which is what the verifier demands.
//!
//! Attachment uses `BPF_LINK_CREATE` (attach type `BPF_XDP`), not the older netlink
//! `IFLA_XDP` route: a link belongs to its file descriptor, so the kernel detaches the program
//! when [`XdpProgram`] drops *or* when the process exits for any reason (Ctrl-C, panic, SIGKILL).
//! Nothing is pinned, so nothing can outlive us. A link also refuses to replace a program that
//! someone else attached; we report that instead of silently taking over the interface.
//!
//! Our address is baked into the instruction immediates at load time (one program per address),
//! so the fast path does no map lookup besides the XSKMAP redirect itself.
//!
//! Must not: be attached twice to one interface, or steer anything not addressed to us.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::error::AfXdpError;
use super::sys;

/// One eBPF instruction, encoded as the kernel's `struct bpf_insn` in a little-endian u64:
/// opcode (8 bits), dst register (4), src register (4), offset (16), immediate (32).
type Insn = u64;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    code as u64
        | ((dst as u64 | (src as u64) << 4) << 8)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}

// Opcode classes and fields (uapi/linux/bpf_common.h, bpf.h).
const LDX_MEM_W: u8 = 0x61;
const LDX_MEM_H: u8 = 0x69;
const LDX_MEM_B: u8 = 0x71;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_ADD_K: u8 = 0x07;
const JMP_JA: u8 = 0x05;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_JGT_X: u8 = 0x2d;
const JMP32_JNE_K: u8 = 0x56;
const JMP_CALL: u8 = 0x85;
const JMP_EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
/// `src_reg` of a 64-bit immediate load meaning "the immediate is a map file descriptor".
const PSEUDO_MAP_FD: u8 = 1;
const HELPER_REDIRECT_MAP: i32 = 51;

const XDP_PASS: i32 = 2;

/// Offsets inside `struct xdp_md`.
const MD_DATA: i16 = 0;
const MD_DATA_END: i16 = 4;
const MD_RX_QUEUE_INDEX: i16 = 16;

/// Frame offsets: Ethernet header 14 bytes, then IPv4 (protocol at +9, destination at +16) or
/// ARP for IPv4 over Ethernet (target protocol address at +24, 28 bytes in all).
const ETH_TYPE: i16 = 12;
const ETH_LEN: i32 = 14;
const IPV4_PROTO: i16 = 14 + 9;
const IPV4_DST: i16 = 14 + 16;
const IPV4_MIN_END: i32 = 14 + 20;
const ARP_TPA: i16 = 14 + 24;
const ARP_END: i32 = 14 + 28;

/// EtherTypes as a little-endian u16 load of the big-endian wire bytes sees them.
const ETHERTYPE_IPV4_LOADED: i32 = u16::from_le_bytes([0x08, 0x00]) as i32;
const ETHERTYPE_ARP_LOADED: i32 = u16::from_le_bytes([0x08, 0x06]) as i32;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_TCP: i32 = 6;

// Labels: instruction indices of the jump targets below.
const L_IPV4: usize = 9;
const L_ARP: usize = 18;
const L_REDIRECT: usize = 23;
const L_PASS: usize = 29;
// The IPv4 block is reached by falling through the EtherType dispatch, not by a jump.
const _: () = assert!(L_IPV4 == 9);
/// Placeholder immediates, patched by [`steering_program`].
const ADDR_SLOT: [usize; 2] = [13, 22];
const MAP_SLOT: usize = 24;

/// Relative jump offset from instruction `at` to label `to` (offsets count from the next insn).
const fn rel(at: usize, to: usize) -> i16 {
    (to as isize - at as isize - 1) as i16
}

/// The steering program with zero placeholders for our address and the XSKMAP descriptor.
/// Registers: r6 = ctx, r2 = data, r3 = data_end, r4 = bounds probe, r5 = loaded field.
const TEMPLATE: [Insn; 31] = [
    // 0..=5: keep ctx, load data/data_end, require a whole Ethernet header.
    insn(ALU64_MOV_X, 6, 1, 0, 0),
    insn(LDX_MEM_W, 2, 1, MD_DATA, 0),
    insn(LDX_MEM_W, 3, 1, MD_DATA_END, 0),
    insn(ALU64_MOV_X, 4, 2, 0, 0),
    insn(ALU64_ADD_K, 4, 0, 0, ETH_LEN),
    insn(JMP_JGT_X, 4, 3, rel(5, L_PASS), 0),
    // 6..=8: dispatch on EtherType.
    insn(LDX_MEM_H, 5, 2, ETH_TYPE, 0),
    insn(JMP_JEQ_K, 5, 0, rel(7, L_ARP), ETHERTYPE_ARP_LOADED),
    insn(JMP_JNE_K, 5, 0, rel(8, L_PASS), ETHERTYPE_IPV4_LOADED),
    // 9..=17 (L_IPV4): fixed IPv4 header present, destination is ours, protocol TCP or ICMP.
    insn(ALU64_MOV_X, 4, 2, 0, 0),
    insn(ALU64_ADD_K, 4, 0, 0, IPV4_MIN_END),
    insn(JMP_JGT_X, 4, 3, rel(11, L_PASS), 0),
    insn(LDX_MEM_W, 5, 2, IPV4_DST, 0),
    insn(JMP32_JNE_K, 5, 0, rel(13, L_PASS), 0), // ADDR_SLOT[0]
    insn(LDX_MEM_B, 5, 2, IPV4_PROTO, 0),
    insn(JMP_JEQ_K, 5, 0, rel(15, L_REDIRECT), IPPROTO_TCP),
    insn(JMP_JEQ_K, 5, 0, rel(16, L_REDIRECT), IPPROTO_ICMP),
    insn(JMP_JA, 0, 0, rel(17, L_PASS), 0),
    // 18..=22 (L_ARP): whole ARP body present and the target protocol address is ours.
    insn(ALU64_MOV_X, 4, 2, 0, 0),
    insn(ALU64_ADD_K, 4, 0, 0, ARP_END),
    insn(JMP_JGT_X, 4, 3, rel(20, L_PASS), 0),
    insn(LDX_MEM_W, 5, 2, ARP_TPA, 0),
    insn(JMP32_JNE_K, 5, 0, rel(22, L_PASS), 0), // ADDR_SLOT[1]
    // 23..=28 (L_REDIRECT): bpf_redirect_map(xsks, rx_queue_index, XDP_PASS if the slot is empty).
    insn(LDX_MEM_W, 2, 6, MD_RX_QUEUE_INDEX, 0),
    insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, 0), // MAP_SLOT
    insn(0, 0, 0, 0, 0),
    insn(ALU64_MOV_K, 3, 0, 0, XDP_PASS),
    insn(JMP_CALL, 0, 0, 0, HELPER_REDIRECT_MAP),
    insn(JMP_EXIT, 0, 0, 0, 0),
    // 29..=30 (L_PASS): hand the frame to the kernel.
    insn(ALU64_MOV_K, 0, 0, 0, XDP_PASS),
    insn(JMP_EXIT, 0, 0, 0, 0),
];

/// The program for `addr`, with the XSKMAP descriptor `map_fd` filled in.
fn steering_program(addr: Ipv4Addr, map_fd: RawFd) -> [Insn; 31] {
    let mut prog = TEMPLATE;
    // A 32-bit load of the four address bytes, as the JMP32 compare sees it.
    let loaded = u32::from_le_bytes(addr.octets()) as i32;
    for slot in ADDR_SLOT {
        prog[slot] = (prog[slot] & 0xffff_ffff) | ((loaded as u32 as u64) << 32);
    }
    prog[MAP_SLOT] = (prog[MAP_SLOT] & 0xffff_ffff) | ((map_fd as u32 as u64) << 32);
    prog
}

/// How the program is attached to the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode when the driver has no XDP support.
    Auto,
    /// Native mode only (`XDP_FLAGS_DRV_MODE`): the program runs in the driver before any skb.
    Native,
    /// Generic mode only (`XDP_FLAGS_SKB_MODE`): works on every interface, after skb allocation.
    Generic,
}

impl XdpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// The steering program, loaded and attached to one interface; detached on drop.
#[derive(Debug)]
pub struct XdpProgram {
    ifname: String,
    ifindex: u32,
    addr: Ipv4Addr,
    mode: XdpMode,
    frags: bool,
    rx_queues: u32,
    map: OwnedFd,
    // Dropping the link detaches the program; keep the program fd for the link's lifetime.
    _link: OwnedFd,
    _prog: OwnedFd,
}

impl XdpProgram {
    /// Loads the program for `addr` and attaches it to `ifname` (in the calling thread's network
    /// namespace) in `mode`; [`XdpMode::Auto`] tries native first, then generic.
    ///
    /// The program is loaded frags-aware (`BPF_F_XDP_HAS_FRAGS`) when the kernel allows it: it
    /// reads only the headers, which are always in the first buffer, and veth refuses a native
    /// program without the flag once the MTU exceeds what one page holds (~3.5 KB). A
    /// multi-buffer frame redirected to our socket (which does not use `XDP_USE_SG`) is copied
    /// into one UMEM frame when it fits and dropped by the kernel otherwise, so the UMEM frame
    /// must hold a whole frame ([`super::AfXdpConfig::for_mtu`]). A kernel or driver that
    /// refuses the flag gets the plain program.
    pub fn attach(ifname: &str, addr: Ipv4Addr, mode: XdpMode) -> Result<XdpProgram, AfXdpError> {
        let ifindex = sys::interface_index(ifname)?;
        let rx_queues = sys::interface_rx_queues(ifname)?;
        let map = sys::create_xskmap(rx_queues.max(64))?;
        let insns = steering_program(addr, map.as_raw_fd());
        let load = |flags| sys::load_xdp_program(&insns, "linerate_steer", "Dual MIT/GPL", flags);
        let mut attempts = Vec::with_capacity(2);
        match load(sys::BPF_F_XDP_HAS_FRAGS) {
            Ok(prog) => attempts.push((prog, true)),
            Err(AfXdpError::PermissionDenied { what }) => return Err(AfXdpError::PermissionDenied { what }),
            Err(_) => {} // a kernel before 5.18: the plain program below
        }
        attempts.push((load(0)?, false));
        let mut last = None;
        for (prog, frags) in attempts {
            match attach_mode(&prog, ifname, ifindex, mode) {
                Ok((link, mode)) => {
                    return Ok(XdpProgram {
                        ifname: ifname.to_owned(),
                        ifindex,
                        addr,
                        mode,
                        frags,
                        rx_queues,
                        map,
                        _link: link,
                        _prog: prog,
                    })
                }
                Err(e @ AfXdpError::AttachFailed { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one program was loaded"))
    }

    /// Whether the attached program is frags-aware (`BPF_F_XDP_HAS_FRAGS`).
    pub fn frags_aware(&self) -> bool {
        self.frags
    }

    /// The mode the program actually runs in ([`XdpMode::Native`] or [`XdpMode::Generic`]).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    /// The IPv4 address whose frames are steered to our sockets.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// Receive queues the interface had at attach time: open one device per queue.
    pub fn rx_queues(&self) -> u32 {
        self.rx_queues
    }

    /// Steers frames arriving on `queue` to `socket`.
    pub(crate) fn register(&self, queue: u32, socket: RawFd) -> Result<(), AfXdpError> {
        sys::xskmap_insert(&self.map, queue, socket)
    }
}

/// Attaches in `mode`; [`XdpMode::Auto`] tries native first, then generic.
fn attach_mode(
    prog: &OwnedFd,
    ifname: &str,
    ifindex: u32,
    mode: XdpMode,
) -> Result<(OwnedFd, XdpMode), AfXdpError> {
    match mode {
        XdpMode::Native | XdpMode::Generic => Ok((attach_in(prog, ifname, ifindex, mode)?, mode)),
        XdpMode::Auto => match attach_in(prog, ifname, ifindex, XdpMode::Native) {
            Ok(link) => Ok((link, XdpMode::Native)),
            Err(AfXdpError::AttachFailed { .. }) => {
                Ok((attach_in(prog, ifname, ifindex, XdpMode::Generic)?, XdpMode::Generic))
            }
            Err(e) => Err(e),
        },
    }
}

fn attach_in(prog: &OwnedFd, ifname: &str, ifindex: u32, mode: XdpMode) -> Result<OwnedFd, AfXdpError> {
    let flags = match mode {
        XdpMode::Generic => sys::XDP_FLAGS_SKB_MODE,
        _ => sys::XDP_FLAGS_DRV_MODE,
    };
    sys::link_xdp(prog, ifindex, flags).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => {
            AfXdpError::ProgramAlreadyAttached { ifname: ifname.to_owned() }
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            AfXdpError::PermissionDenied { what: "attaching the XDP program (bpf link)" }
        }
        _ => AfXdpError::AttachFailed { ifname: ifname.to_owned(), mode: mode.as_str(), source: e },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(i: Insn) -> u8 {
        i as u8
    }
    fn off(i: Insn) -> i16 {
        (i >> 16) as u16 as i16
    }

    #[test]
    fn labels_point_at_their_blocks() {
        assert_eq!(code(TEMPLATE[L_IPV4]), ALU64_MOV_X);
        assert_eq!(code(TEMPLATE[L_ARP]), ALU64_MOV_X);
        assert_eq!(code(TEMPLATE[L_REDIRECT]), LDX_MEM_W);
        assert_eq!(code(TEMPLATE[L_PASS]), ALU64_MOV_K);
        assert_eq!(code(TEMPLATE[MAP_SLOT]), LD_IMM64);
        for slot in ADDR_SLOT {
            assert_eq!(code(TEMPLATE[slot]), JMP32_JNE_K);
        }
        // The fall-through from the EtherType dispatch is the IPv4 block.
        assert_eq!(8 + 1 + off(TEMPLATE[8]) as usize, L_PASS);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        for (at, &i) in TEMPLATE.iter().enumerate() {
            let class = code(i) & 0x07;
            let op = code(i) & 0xf0;
            let is_jump = (class == 0x05 || class == 0x06) && op != 0x80 && op != 0x90;
            if is_jump {
                let target = at as isize + 1 + off(i) as isize;
                assert!((0..TEMPLATE.len() as isize).contains(&target), "insn {at} jumps to {target}");
            }
        }
    }

    /// A tiny interpreter for exactly the instructions the template uses. Packet loads outside
    /// `[data, data_end)` panic, so a missing bounds check fails the test (as the verifier would
    /// refuse it). `bpf_redirect_map` returns XDP_REDIRECT (4) for queue 0, the flags otherwise.
    fn run(prog: &[Insn], frame: &[u8]) -> u64 {
        const CTX: u64 = 0x1000;
        const DATA: u64 = 0x10_0000;
        let data_end = DATA + frame.len() as u64;
        let mut r = [0u64; 11];
        r[1] = CTX;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (op, dst, src) = (code(i), ((i >> 8) & 0xf) as usize, ((i >> 12) & 0xf) as usize);
            let (off, imm) = (off(i) as i64, (i >> 32) as u32 as i32 as i64);
            let at_pc = pc;
            let load = |addr: u64, size: usize| -> u64 {
                if (CTX..CTX + 20).contains(&addr) {
                    return match addr - CTX {
                        0 => DATA,
                        4 => data_end,
                        16 => 0,
                        other => panic!("unexpected ctx offset {other}"),
                    };
                }
                assert!(
                    addr >= DATA && addr + size as u64 <= data_end,
                    "out-of-bounds packet read at pc {at_pc}"
                );
                let at = (addr - DATA) as usize;
                frame[at..at + size].iter().rev().fold(0, |acc, &b| acc << 8 | u64::from(b))
            };
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as i64 + off) as usize;
                }
            };
            match op {
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_MOV_K => r[dst] = imm as u64,
                ALU64_ADD_K => r[dst] = r[dst].wrapping_add(imm as u64),
                LDX_MEM_W => r[dst] = load(r[src].wrapping_add(off as u64), 4),
                LDX_MEM_H => r[dst] = load(r[src].wrapping_add(off as u64), 2),
                LDX_MEM_B => r[dst] = load(r[src].wrapping_add(off as u64), 1),
                JMP_JGT_X => jump(r[dst] > r[src], &mut pc),
                JMP_JEQ_K => jump(r[dst] == imm as u64, &mut pc),
                JMP_JNE_K => jump(r[dst] != imm as u64, &mut pc),
                JMP32_JNE_K => jump(r[dst] as u32 != imm as u32, &mut pc),
                JMP_JA => jump(true, &mut pc),
                LD_IMM64 => {
                    r[dst] = (i >> 32) | (prog[pc] >> 32) << 32;
                    pc += 1;
                }
                JMP_CALL => {
                    assert_eq!(imm, i64::from(HELPER_REDIRECT_MAP));
                    r[0] = if r[2] == 0 { 4 } else { r[3] };
                }
                JMP_EXIT => return r[0],
                other => panic!("interpreter lacks opcode {other:#x}"),
            }
        }
    }

    fn ipv4_frame(proto: u8, dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f
    }

    fn arp_frame(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[38..42].copy_from_slice(&target);
        f
    }

    #[test]
    fn steers_only_our_tcp_icmp_and_arp_and_never_reads_past_the_end() {
        let ours = [198, 18, 0, 130]; // top bit set in the loaded u32: exercises the 32-bit compare
        let prog = steering_program(Ipv4Addr::from(ours), 3);
        let other = [198, 18, 0, 1];
        let cases: [(&str, Vec<u8>, u64, usize); 8] = [
            ("tcp to us", ipv4_frame(6, ours), 4, 34),
            ("icmp to us", ipv4_frame(1, ours), 4, 34),
            ("udp to us", ipv4_frame(17, ours), 2, 0),
            ("tcp to another host", ipv4_frame(6, other), 2, 0),
            ("arp for us", arp_frame(ours), 4, 42),
            ("arp for another host", arp_frame(other), 2, 0),
            (
                "ipv6",
                {
                    let mut f = ipv4_frame(6, ours);
                    f[12..14].copy_from_slice(&[0x86, 0xdd]);
                    f
                },
                2,
                0,
            ),
            (
                "vlan-tagged",
                {
                    let mut f = ipv4_frame(6, ours);
                    f[12..14].copy_from_slice(&[0x81, 0x00]);
                    f
                },
                2,
                0,
            ),
        ];
        for (name, frame, verdict, needed) in cases {
            assert_eq!(run(&prog, &frame), verdict, "{name}");
            // Every truncation is safe, and too-short frames go to the kernel.
            for len in 0..frame.len() {
                let expect = if len >= needed { verdict } else { 2 };
                assert_eq!(run(&prog, &frame[..len]), expect, "{name} cut to {len} bytes");
            }
        }
    }

    #[test]
    fn patching_fills_address_and_map() {
        let prog = steering_program(Ipv4Addr::new(198, 18, 0, 200), 7);
        for slot in ADDR_SLOT {
            assert_eq!((prog[slot] >> 32) as u32, u32::from_le_bytes([198, 18, 0, 200]));
        }
        assert_eq!((prog[MAP_SLOT] >> 32) as u32, 7);
        assert_eq!((prog[MAP_SLOT] >> 12) & 0xf, PSEUDO_MAP_FD as u64);
    }
}
