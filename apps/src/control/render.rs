//! Renders shard snapshots for `linerate stats`: an `ss -ti`-like connection table followed by
//! `nstat`-like counters summed over all shards, or the same as one JSON document.
//!
//! Runs on the control thread only. The counter names are the field names of
//! [`linerate_stack::stats::Stats`], read from its `Debug` form so that a counter added to the
//! engine shows up here without a second list to keep in step.

use super::ShardSnapshot;
use linerate_stack::stats::Stats;
use linerate_stack::tcp::TcpInfo;
use linerate_stack::time::Duration;
use std::fmt::Write;

/// `(name, value)` for every counter in `stats`, in declaration order.
pub fn counters(stats: &Stats) -> Vec<(String, u64)> {
    let debug = format!("{stats:?}");
    let body = debug.trim_start_matches("Stats").trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The counters of every shard added up.
pub fn total(shards: &[&ShardSnapshot]) -> Stats {
    let mut sum = Stats::default();
    for s in shards {
        sum += &s.stats;
    }
    sum
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// One connection as two `ss -ti` lines.
fn text_row(out: &mut String, shard: usize, c: &TcpInfo) {
    let local = format!("{}:{}", c.tuple.local.0, c.tuple.local.1);
    let remote = format!("{}:{}", c.tuple.remote.0, c.tuple.remote.1);
    let _ = writeln!(
        out,
        "{:<11} {:>8} {:>8} {local:<21} {remote:<21} {shard}",
        c.state.name(),
        c.recv_queue,
        c.send_queue
    );
    let rtt = c.rtt.map_or_else(|| "-".to_owned(), |r| format!("{:.3}/{:.3}", ms(r), ms(c.rttvar)));
    let ssthresh = if c.ssthresh >= u32::MAX / 2 { "inf".to_owned() } else { c.ssthresh.to_string() };
    let _ = writeln!(
        out,
        "\t {:?}{}{} wscale:{},{} rto:{:.0} rtt:{rtt} mss:{} rcvmss:{} cwnd:{} ssthresh:{ssthresh} \
         bytes_sent:{} bytes_retrans:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{} \
         data_segs_out:{} data_segs_in:{} send_wnd:{} rcv_wnd:{} unacked:{} retrans:{}/{} \
         dsack:{} reneged:{} rto_undone:{} delivery_rate:{}bps lastsnd:{} lastrcv:{}",
        c.congestion,
        if c.timestamps { " ts" } else { "" },
        if c.sack { " sack" } else { "" },
        c.snd_wscale,
        c.rcv_wscale,
        ms(c.rto),
        c.snd_mss,
        c.rcv_mss,
        c.cwnd,
        c.bytes_sent,
        c.bytes_retrans,
        c.bytes_acked,
        c.bytes_received,
        c.segs_out,
        c.segs_in,
        c.data_segs_out,
        c.data_segs_in,
        c.snd_wnd,
        c.rcv_wnd,
        c.unacked,
        c.backoff,
        c.total_retrans,
        c.dsack_received,
        c.sack_reneging,
        c.spurious_rto_undone,
        c.delivery_rate.saturating_mul(8),
        c.last_send.as_millis(),
        c.last_recv.as_millis(),
    );
}

/// The human-readable document.
pub fn text(shards: &[&ShardSnapshot]) -> String {
    let mut out = String::new();
    if shards.is_empty() {
        out.push_str("linerate stats: no shard has published yet (the server is starting)\n");
        return out;
    }
    let conns: usize = shards.iter().map(|s| s.conns.len()).sum();
    let uptime = shards.iter().map(|s| s.uptime).max().unwrap_or(Duration::ZERO);
    let _ = writeln!(
        out,
        "linerate stats: {} shard(s), {conns} connection(s), uptime {:.1} s",
        shards.len(),
        uptime.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:<11} {:>8} {:>8} {:<21} {:<21} Shard",
        "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"
    );
    for s in shards {
        for c in &s.conns {
            text_row(&mut out, s.shard, c);
        }
        if s.rows_omitted > 0 {
            let _ = writeln!(out, "({} more connection(s) on shard {} not listed)", s.rows_omitted, s.shard);
        }
    }
    out.push('\n');
    for s in shards {
        let a = &s.app;
        let _ = write!(
            out,
            "shard {}: open {} accepted {} requests {} dropped_snapshots {}",
            s.shard, a.open, a.accepted, a.requests, s.dropped_snapshots
        );
        for (name, value) in a.files.fields() {
            let _ = write!(out, " {name} {value}");
        }
        out.push('\n');
    }
    out.push('\n');
    for (name, value) in counters(&total(shards)) {
        let _ = writeln!(out, "{name:<28} {value}");
    }
    out
}

/// The machine-readable document: `{"shards": [...], "totals": {...}}`. Every value is a number
/// or a plain ASCII string, so no escaping is needed beyond what the names already guarantee.
pub fn json(shards: &[&ShardSnapshot]) -> String {
    let mut out = String::from("{\"shards\":[");
    for (i, s) in shards.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let a = &s.app;
        let _ = write!(
            out,
            "{{\"shard\":{},\"uptime_us\":{},\"dropped_snapshots\":{},\"rows_omitted\":{},\
             \"app\":{{\"open\":{},\"accepted\":{},\"requests\":{}",
            s.shard,
            s.uptime.as_micros(),
            s.dropped_snapshots,
            s.rows_omitted,
            a.open,
            a.accepted,
            a.requests
        );
        for (name, value) in a.files.fields() {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        out.push_str("},\"stats\":");
        json_counters(&mut out, &s.stats);
        out.push_str(",\"connections\":[");
        for (j, c) in s.conns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_row(&mut out, c);
        }
        out.push_str("]}");
    }
    out.push_str("],\"totals\":");
    json_counters(&mut out, &total(shards));
    out.push_str("}\n");
    out
}

fn json_counters(out: &mut String, stats: &Stats) {
    out.push('{');
    for (i, (name, value)) in counters(stats).iter().enumerate() {
        let _ = write!(out, "{}\"{name}\":{value}", if i > 0 { "," } else { "" });
    }
    out.push('}');
}

fn json_row(out: &mut String, c: &TcpInfo) {
    let opt_us = |d: Option<Duration>| d.map_or_else(|| "null".to_owned(), |d| d.as_micros().to_string());
    let _ = write!(
        out,
        "{{\"local\":\"{}:{}\",\"remote\":\"{}:{}\",\"state\":\"{}\",\"recv_queue\":{},\"send_queue\":{},\
         \"rtt_us\":{},\"rttvar_us\":{},\"min_rtt_us\":{},\"rto_us\":{},\"backoff\":{},\"snd_mss\":{},\
         \"rcv_mss\":{},\"cwnd\":{},\"ssthresh\":{},\"congestion\":\"{:?}\",\"snd_wnd\":{},\"rcv_wnd\":{},\
         \"snd_wscale\":{},\"rcv_wscale\":{},\"timestamps\":{},\"sack\":{},\"bytes_sent\":{},\
         \"bytes_retrans\":{},\"bytes_acked\":{},\"bytes_received\":{},\"segs_out\":{},\"segs_in\":{},\
         \"data_segs_out\":{},\"data_segs_in\":{},\"total_retrans\":{},\"dsack_received\":{},\
         \"sack_reneging\":{},\"spurious_rto_undone\":{},\"unacked\":{},\"delivery_rate\":{},\"last_send_us\":{},\"last_recv_us\":{}}}",
        c.tuple.local.0,
        c.tuple.local.1,
        c.tuple.remote.0,
        c.tuple.remote.1,
        c.state.name(),
        c.recv_queue,
        c.send_queue,
        opt_us(c.rtt),
        c.rttvar.as_micros(),
        opt_us(c.min_rtt),
        c.rto.as_micros(),
        c.backoff,
        c.snd_mss,
        c.rcv_mss,
        c.cwnd,
        c.ssthresh,
        c.congestion,
        c.snd_wnd,
        c.rcv_wnd,
        c.snd_wscale,
        c.rcv_wscale,
        c.timestamps,
        c.sack,
        c.bytes_sent,
        c.bytes_retrans,
        c.bytes_acked,
        c.bytes_received,
        c.segs_out,
        c.segs_in,
        c.data_segs_out,
        c.data_segs_in,
        c.total_retrans,
        c.dsack_received,
        c.sack_reneging,
        c.spurious_rto_undone,
        c.unacked,
        c.delivery_rate,
        c.last_send.as_micros(),
        c.last_recv.as_micros(),
    );
}
