//! SACK scoreboard: block validation (RFC 2018/2883), pipe, IsLost and NextSeg (RFC 6675),
//! DeliveredData (RFC 6937), sequence wrap.

use linerate_stack::congestion::PacketSnapshot;
use linerate_stack::recovery::{Delivery, NextSegment, Scoreboard};
use linerate_stack::time::Instant;
use linerate_stack::wire::{SackBlock, SeqNumber};

const MSS: u32 = 100;

/// A scoreboard with `n` segments of `MSS` bytes sent from `base`.
fn board(base: u32, n: u32) -> Scoreboard {
    let mut b = Scoreboard::new(64, MSS, SeqNumber(base));
    for i in 0..n {
        let seq = SeqNumber(base) + i * MSS;
        b.on_new_segment(Instant::from_millis(u64::from(i)), seq, MSS, None, PacketSnapshot::default())
            .unwrap();
    }
    b
}

fn blk(l: u32, r: u32) -> SackBlock {
    SackBlock { left: SeqNumber(l), right: SeqNumber(r) }
}

fn sacked(b: &Scoreboard) -> Vec<u32> {
    b.segments().iter().filter(|r| r.is_sacked()).map(|r| r.start.0).collect()
}

#[test]
fn overlapping_and_duplicate_blocks_are_merged() {
    let mut b = board(1000, 10);
    let mut seen = Vec::new();
    let u = b.on_ack(SeqNumber(1000), &[blk(1200, 1400), blk(1300, 1500), blk(1200, 1400)], |r, how| {
        seen.push((r.start.0, how))
    });
    assert_eq!(u.newly_sacked, 300);
    assert_eq!(u.delivered, 300);
    assert_eq!(sacked(&b), vec![1200, 1300, 1400]);
    assert_eq!(seen, vec![(1200, Delivery::Sacked), (1300, Delivery::Sacked), (1400, Delivery::Sacked)]);
    assert_eq!(b.sacked_segments(), 3);
    // The same blocks again change nothing.
    let u = b.on_ack(SeqNumber(1000), &[blk(1200, 1500)], |_, _| panic!("nothing new"));
    assert_eq!((u.newly_sacked, u.delivered), (0, 0));
    assert_eq!(b.pipe(), 700);
}

#[test]
fn dsack_below_the_ack_is_reported_not_marked() {
    let mut b = board(1000, 10);
    let u = b.on_ack(SeqNumber(1300), &[blk(1000, 1100), blk(1500, 1600)], |_, _| {});
    assert_eq!(u.dsack, Some((SeqNumber(1000), SeqNumber(1100))));
    assert_eq!(u.newly_acked, 300);
    assert_eq!(sacked(&b), vec![1500]);
    assert_eq!(b.counters().dsack_blocks, 1);
}

#[test]
fn dsack_inside_the_second_block() {
    let mut b = board(1000, 10);
    let u = b.on_ack(SeqNumber(1000), &[blk(1500, 1600), blk(1400, 1700)], |_, _| {});
    assert_eq!(u.dsack, Some((SeqNumber(1500), SeqNumber(1600))));
    assert_eq!(sacked(&b), vec![1400, 1500, 1600]);
    // Only the first block may be a D-SACK: the same containment later is plain SACK.
    let u = b.on_ack(SeqNumber(1000), &[blk(1800, 1900), blk(1850, 1860), blk(1700, 2000)], |_, _| {});
    assert_eq!(u.dsack, None);
    assert_eq!(b.counters().partial_sacks, 0, "the small block merges into the big one");
    assert_eq!(sacked(&b), vec![1400, 1500, 1600, 1700, 1800, 1900]);
}

#[test]
fn out_of_window_reversed_and_partial_blocks_are_ignored_and_counted() {
    let mut b = board(1000, 10); // snd_nxt = 2000
    let u = b.on_ack(
        SeqNumber(1000),
        &[blk(1600, 1500), blk(1900, 2100), blk(0x8000_0000, 0x8000_0100), blk(1250, 1350)],
        |_, _| panic!("nothing may be marked"),
    );
    assert_eq!((u.newly_sacked, u.dsack), (0, None));
    assert_eq!(b.counters().invalid_blocks, 3);
    assert_eq!(b.counters().partial_sacks, 2, "1200..1300 and 1300..1400 are only half covered");
    // Stale block wholly below the ACK (not first) is ignored.
    b.on_ack(SeqNumber(1500), &[blk(1700, 1800), blk(1100, 1200)], |_, _| {});
    assert_eq!(b.counters().invalid_blocks, 4);
    assert_eq!(sacked(&b), vec![1700]);
    // An ACK for data never sent is ignored entirely.
    let u = b.on_ack(SeqNumber(2100), &[], |_, _| {});
    assert!(u.ignored);
    assert_eq!(b.snd_una(), SeqNumber(1500));
}

#[test]
fn a_block_straddling_snd_una_is_clipped() {
    let mut b = board(1000, 10);
    let u = b.on_ack(SeqNumber(1200), &[blk(1100, 1400)], |_, _| {});
    assert_eq!(u.dsack, None);
    assert_eq!(sacked(&b), vec![1200, 1300]);
}

#[test]
fn is_lost_follows_rfc6675_dupthresh() {
    let mut b = board(1000, 10);
    b.on_ack(SeqNumber(1000), &[blk(1200, 1300), blk(1400, 1500)], |_, _| {});
    assert!(!b.is_lost(SeqNumber(1000)), "two SACKed segments above: not yet");
    b.on_ack(SeqNumber(1000), &[blk(1600, 1700), blk(1400, 1500), blk(1200, 1300)], |_, _| {});
    assert!(b.is_lost(SeqNumber(1000)));
    assert!(b.is_lost(SeqNumber(1100)));
    assert!(!b.is_lost(SeqNumber(1300)), "only two SACKed segments above 1300");
    assert_eq!(b.pipe(), 700);
    assert_eq!(b.mark_dupthresh_losses(), 200);
    assert_eq!(b.pipe(), 500, "lost bytes leave pipe");
    assert_eq!(b.mark_dupthresh_losses(), 0, "each segment is marked once");
}

#[test]
fn is_lost_byte_criterion_with_large_segments() {
    let mut b = Scoreboard::new(8, MSS, SeqNumber(0));
    b.on_new_segment(Instant::ZERO, SeqNumber(0), 100, None, PacketSnapshot::default()).unwrap();
    b.on_new_segment(Instant::ZERO, SeqNumber(100), 250, None, PacketSnapshot::default()).unwrap();
    b.on_ack(SeqNumber(0), &[blk(100, 350)], |_, _| {});
    assert!(b.is_lost(SeqNumber(0)), "250 SACKed bytes > (DupThresh-1)·SMSS above");
}

#[test]
fn next_seg_rules_in_order() {
    let mut b = board(1000, 10);
    b.on_ack(SeqNumber(1000), &[blk(1500, 1800)], |_, _| {});
    b.mark_dupthresh_losses(); // 1000..1500 lost (three SACKed above)
                               // Rule 1: lost segments in sequence order.
    assert_eq!(b.next_seg(true, true), NextSegment::Retransmit { seq: SeqNumber(1000), len: 100 });
    for i in 0..5 {
        b.on_retransmit(
            Instant::from_millis(20),
            SeqNumber(1000 + i * 100),
            100,
            None,
            PacketSnapshot::default(),
        );
    }
    assert_eq!(b.high_rxt(), SeqNumber(1500));
    assert_eq!(b.pipe(), 500 + 200, "retransmissions in flight plus 1800..2000");
    // Rule 2: new data when there is some.
    assert_eq!(b.next_seg(true, true), NextSegment::NewData);
    // Rule 3 finds nothing between HighRxt and the highest SACK; rule 4 rescues the tail once.
    assert_eq!(b.next_seg(false, true), NextSegment::Retransmit { seq: SeqNumber(1900), len: 100 });
    assert_eq!(b.rescue_rxt(), Some(SeqNumber(2000)));
    assert_eq!(b.next_seg(false, true), NextSegment::Nothing);
    assert_eq!(b.next_seg(false, false), NextSegment::Nothing);
}

#[test]
fn next_seg_rule3_retransmits_unsacked_below_highest_sack() {
    let mut b = board(1000, 10);
    b.on_ack(SeqNumber(1000), &[blk(1300, 1400), blk(1600, 1700)], |_, _| {});
    // Fewer than DupThresh SACKs: nothing lost, rule 3 offers the first hole.
    assert_eq!(b.next_seg(false, true), NextSegment::Retransmit { seq: SeqNumber(1000), len: 100 });
}

#[test]
fn delivered_data_counts_sacked_bytes_once() {
    let mut b = board(1000, 10);
    let u = b.on_ack(SeqNumber(1000), &[blk(1100, 1300)], |_, _| {});
    assert_eq!(u.delivered, 200);
    let u = b.on_ack(SeqNumber(1300), &[], |_, _| {});
    assert_eq!((u.newly_acked, u.acked_after_sack, u.delivered), (300, 200, 100));
    assert_eq!(b.sacked_bytes(), 0);
    assert_eq!(b.flight_size(), 700);
}

#[test]
fn ack_inside_a_segment_trims_it() {
    let mut b = board(1000, 3);
    let u = b.on_ack(SeqNumber(1050), &[], |_, _| panic!("no whole segment acked"));
    assert_eq!(u.newly_acked, 50);
    assert_eq!(b.segments().front().map(|r| (r.start.0, r.len)), Some((1050, 50)));
    assert_eq!(b.flight_size(), 250);
}

#[test]
fn sequence_wrap_around_2_pow_32() {
    // Ten 256-byte segments from 0xFFFF_FE00: the third starts at 0.
    let mut b = Scoreboard::new(16, 256, SeqNumber(0xFFFF_FE00));
    for i in 0..10u32 {
        let seq = SeqNumber(0xFFFF_FE00) + i * 256;
        b.on_new_segment(Instant::ZERO, seq, 256, None, PacketSnapshot::default()).unwrap();
    }
    assert_eq!(b.high_data(), SeqNumber(0x800));
    let u = b.on_ack(SeqNumber(0xFFFF_FE00), &[blk(0, 0x200), blk(0xFFFF_FFC0, 0x40)], |_, _| {});
    assert_eq!(u.newly_sacked, 0x200);
    assert_eq!(sacked(&b), vec![0, 0x100]);
    assert_eq!(b.counters().partial_sacks, 1, "0xFFFF_FF00.. is only partly covered");
    b.on_ack(SeqNumber(0x300), &[blk(0x400, 0x500)], |_, _| {});
    assert_eq!(b.snd_una(), SeqNumber(0x300));
    assert_eq!(b.flight_size(), 0x500);
    assert_eq!(sacked(&b), vec![0x400]);
    let u = b.on_ack(SeqNumber(0x300), &[blk(0xFFFF_FF00, 0xFFFF_FF64)], |_, _| {});
    assert_eq!(u.dsack, Some((SeqNumber(0xFFFF_FF00), SeqNumber(0xFFFF_FF64))), "D-SACK across the wrap");
    assert_eq!(b.segments().position_of(SeqNumber(0x450)), Some(1));
    assert_eq!(b.segments().position_of(SeqNumber(0x2FF)), None);
}

#[test]
fn store_full_stops_new_data() {
    let mut b = Scoreboard::new(2, MSS, SeqNumber(0));
    let s = PacketSnapshot::default();
    b.on_new_segment(Instant::ZERO, SeqNumber(0), 100, None, s).unwrap();
    b.on_new_segment(Instant::ZERO, SeqNumber(100), 100, None, s).unwrap();
    assert!(b.on_new_segment(Instant::ZERO, SeqNumber(200), 100, None, s).is_err());
    b.on_ack(SeqNumber(100), &[], |_, _| {});
    assert!(b.on_new_segment(Instant::ZERO, SeqNumber(200), 100, None, s).is_ok());
}
