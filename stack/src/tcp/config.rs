//! Configuration: engine-wide TCP parameters ([`TcpConfig`]) and per-socket options
//! ([`SocketOptions`]). Defaults follow Linux where the issue asks for "Linux defaults".

use crate::congestion::Algorithm as CongestionAlgorithm;
use crate::time::Duration;

/// Keepalive parameters (RFC 9293 §3.8.4; Linux `tcp_keepalive_*` defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (Linux 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (Linux 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead (Linux 9).
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive { idle: Duration::from_secs(7200), interval: Duration::from_secs(75), count: 9 }
    }
}

/// Per-socket options, set at `listen`/`connect` and adjustable later with `set_options`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// Disable Nagle's algorithm (TCP_NODELAY).
    pub nodelay: bool,
    /// Acknowledge every segment immediately instead of delaying (TCP_QUICKACK, sticky here).
    pub quickack: bool,
    /// Keepalive probing; `None` = off (the default, RFC 9293 MUST-24 "off by default").
    pub keepalive: Option<Keepalive>,
    /// User timeout (RFC 9293 §3.8.3 R2 / TCP_USER_TIMEOUT): give up when data stays unacked
    /// this long. `None` = use the retransmission count R2.
    pub user_timeout: Option<Duration>,
    /// Send buffer size in bytes (allocated once per connection).
    pub send_buffer: usize,
    /// Receive buffer size in bytes: the largest window auto-tuning may offer.
    pub recv_buffer: usize,
    /// Congestion control algorithm (CUBIC by default; NewReno or BBRv3).
    pub congestion: CongestionAlgorithm,
    /// Pace transmissions at the controller's pacing rate, released from the timer wheel
    /// (earliest departure time, bursts of up to ~1 ms / 64 KiB). On by default, as Linux paces
    /// every flow under the fq qdisc: NewReno and CUBIC at `cwnd / srtt` × 2 in slow start and
    /// × 1.2 after (see `congestion::window`). `false` sends each window as the ACK clock
    /// allows (`linerate serve --pacing off`). BBR always paces.
    pub pacing: bool,
    /// Restart from the initial window after an idle period longer than the RTO (RFC 5681
    /// §4.1). Off by default (Linux `tcp_slow_start_after_idle=0`): a reused connection keeps
    /// its window across requests.
    pub slow_start_after_idle: bool,
    /// BBR only: count as congestion only the loss beyond the path's background (random) loss
    /// rate, as `linerate serve --bbr-random-loss` chooses. On by default; `false` gives
    /// draft-ietf-ccwg-bbr's loss response exactly, the better choice where many flows share a
    /// bottleneck and random loss is rare (see `CongestionConfig::bbr_tolerate_random_loss`).
    pub bbr_tolerate_random_loss: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: false,
            quickack: false,
            keepalive: None,
            user_timeout: None,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            congestion: CongestionAlgorithm::Cubic,
            pacing: true,
            slow_start_after_idle: false,
            bbr_tolerate_random_loss: true,
        }
    }
}

/// Engine-wide TCP parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// RFC 6298 §2.1 initial RTO (1 s).
    pub initial_rto: Duration,
    /// RFC 6298 §2.4 minimum RTO; Linux uses 200 ms.
    pub min_rto: Duration,
    /// RFC 6298 §2.5 maximum RTO (Linux 120 s).
    pub max_rto: Duration,
    /// SYN retransmissions before giving up (Linux tcp_syn_retries = 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before giving up (Linux tcp_synack_retries = 5).
    pub synack_retries: u32,
    /// R1: retransmissions after which the next hop is re-resolved (Linux tcp_retries1 = 3).
    pub retries1: u32,
    /// R2: retransmissions after which the connection is aborted (Linux tcp_retries2 = 15).
    pub retries2: u32,
    /// TIME-WAIT duration, 2*MSL (Linux 60 s).
    pub time_wait: Duration,
    /// FIN-WAIT-2 timeout for orphaned connections (Linux tcp_fin_timeout = 60 s).
    pub fin_wait2_timeout: Duration,
    /// Delayed-ACK timeout (RFC 9293 MUST-40 < 0.5 s; Linux max 40 ms for quick paths).
    pub delayed_ack: Duration,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_window: u32,
    /// First receive window offered before auto-tuning grows it (bytes).
    pub initial_rcv_window: u32,
    /// RFC 5961 §7 challenge ACK budget per second across the engine (Linux 1000).
    pub challenge_ack_limit: u32,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// F-RTO detection of spurious retransmission timeouts (RFC 5682 §3.1 step 3b) for SACK
    /// peers without timestamps (Linux `net.ipv4.tcp_frto`; with timestamps the Eifel test
    /// decides, and D-SACKs always can).
    pub frto: bool,
    /// Options for sockets that do not set their own.
    pub default_socket: SocketOptions,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            retries1: 3,
            retries2: 15,
            time_wait: Duration::from_secs(60),
            fin_wait2_timeout: Duration::from_secs(60),
            delayed_ack: Duration::from_millis(40),
            initial_window: 10,
            initial_rcv_window: 64 * 1024,
            challenge_ack_limit: 1000,
            window_scaling: true,
            timestamps: true,
            sack: true,
            frto: true,
            default_socket: SocketOptions::default(),
        }
    }
}
