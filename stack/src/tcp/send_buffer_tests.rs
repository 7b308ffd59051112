use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

fn read(b: &SendBuffer, seq: SeqNumber, len: usize) -> Vec<u8> {
    b.pieces(seq, len).flatten().copied().collect()
}

fn source(bytes: &[u8]) -> Arc<dyn SendSource> {
    Arc::new(bytes.to_vec())
}

fn chunk(src: &Arc<dyn SendSource>, range: core::ops::Range<usize>) -> ExternalChunk {
    ExternalChunk::new(src.clone(), range).unwrap()
}

#[test]
fn write_ack_and_read_across_the_wrap() {
    let mut b = SendBuffer::new(8, SeqNumber(u32::MAX - 2));
    assert_eq!(b.write(b"abcdef"), 6);
    assert_eq!(b.ack_to(SeqNumber(u32::MAX - 2) + 4), 4);
    assert_eq!(b.write(b"ghijklmn"), 6);
    assert_eq!(read(&b, SeqNumber(u32::MAX - 2) + 4, 100), b"efghijkl");
    assert_eq!(b.pieces(SeqNumber(u32::MAX - 2) + 4, 100).count(), 2);
    assert_eq!(b.end_seq(), SeqNumber(u32::MAX - 2) + 12);
    assert_eq!(read(&b, SeqNumber(u32::MAX - 2) + 6, 3), b"ghi");
}

#[test]
fn write_with_fills_the_ring_in_place_piece_by_piece() {
    let mut b = SendBuffer::new(8, SeqNumber(0));
    b.write(b"abcdef");
    b.ack_to(SeqNumber(4));
    // Free space: 2 bytes at the end of the ring, then 4 at its start.
    let two = b.write_with(100, |buf| {
        assert_eq!(buf.len(), 2);
        buf.copy_from_slice(b"gh");
        2
    });
    assert_eq!(two, 2);
    let one = b.write_with(3, |buf| {
        assert_eq!(buf.len(), 3);
        buf[..1].copy_from_slice(b"i");
        1
    });
    assert_eq!(one, 1);
    // A closure claiming more than it was given is clamped.
    assert_eq!(b.write_with(100, |buf| buf.len() + 5), 3);
    assert_eq!(b.write_with(100, |_| unreachable!("buffer is full")), 0);
    assert_eq!(&read(&b, SeqNumber(4), 5), b"efghi");
}

#[test]
fn ack_beyond_the_end_drops_only_what_is_stored() {
    let mut b = SendBuffer::new(8, SeqNumber(100));
    b.write(b"abc");
    assert_eq!(b.ack_to(SeqNumber(200)), 3);
    assert_eq!(b.ack_to(SeqNumber(50)), 0);
    assert!(b.is_empty());
}

#[test]
fn lent_chunks_interleave_with_ring_bytes_and_count_against_space() {
    let body = source(b"0123456789abcdef");
    let mut b = SendBuffer::new(16, SeqNumber(u32::MAX - 1));
    let s0 = SeqNumber(u32::MAX - 1);
    b.write(b"HDR:");
    assert_eq!(b.write_external(&chunk(&body, 0..6)), 6);
    // Continues the previous chunk: merged, no new extent.
    assert_eq!(b.write_external(&chunk(&body, 6..8)), 2);
    assert_eq!(b.lent_extents(), 1);
    b.write(b"\r\n");
    assert_eq!(b.free(), 2);
    assert_eq!(b.write_external(&chunk(&body, 8..16)), 2);
    assert_eq!(b.free(), 0);
    assert_eq!(read(&b, s0, 100), b"HDR:01234567\r\n89");
    let pieces: Vec<&[u8]> = b.pieces(s0 + 2, 9).collect();
    assert_eq!(pieces, [&b"R:"[..], b"0123456"]);
    // Acknowledging into the first chunk keeps its source; past it releases it.
    assert_eq!(Arc::strong_count(&body), 3);
    b.ack_to(s0 + 6);
    assert_eq!(read(&b, s0 + 6, 3), b"234");
    assert_eq!(Arc::strong_count(&body), 3);
    b.ack_to(s0 + 13);
    assert_eq!(Arc::strong_count(&body), 2);
    assert_eq!(read(&b, s0 + 13, 10), b"\n89");
    b.ack_to(s0 + 16);
    assert_eq!((Arc::strong_count(&body), b.lent_extents(), b.is_empty()), (1, 0, true));
    // Back to a plain ring, which wraps.
    b.write(b"after the chunk");
    assert_eq!(read(&b, s0 + 16, 100), b"after the chunk");
}

#[test]
fn release_drops_every_lent_source() {
    let body = source(&[7u8; 100]);
    let mut b = SendBuffer::new(64, SeqNumber(0));
    b.write_external(&chunk(&body, 0..10));
    b.write(b"x");
    b.write_external(&chunk(&body, 20..30));
    assert_eq!(Arc::strong_count(&body), 3);
    b.release();
    assert_eq!(Arc::strong_count(&body), 1);
    assert_eq!(b.write_external(&chunk(&body, 0..10)), 0);
}

#[test]
fn the_extent_queue_is_bounded() {
    let body = source(&[1u8; 1000]);
    let mut b = SendBuffer::new(1000, SeqNumber(0));
    // Every other byte of the source: no chunk continues the previous one.
    let mut taken = 0;
    for i in 0..MAX_EXTENTS + 5 {
        taken += b.write_external(&chunk(&body, 2 * i..2 * i + 1));
    }
    assert_eq!(taken, MAX_EXTENTS);
    // Ring bytes need an extent of their own after a chunk: refused too.
    assert_eq!(b.write(b"h"), 0);
    b.ack_to(SeqNumber(1));
    assert_eq!(b.write(b"h"), 1);
    assert_eq!(b.write(b"ij"), 2);
}

struct Flagged {
    bytes: Vec<u8>,
    ok: AtomicBool,
}

impl SendSource for Flagged {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn is_intact(&self) -> bool {
        self.ok.load(Ordering::Relaxed)
    }
}

fn intact_after_reading(b: &SendBuffer, seq: u32, len: usize) -> bool {
    let mut pieces = b.pieces(SeqNumber(seq), len);
    pieces.by_ref().for_each(drop);
    pieces.intact()
}

#[test]
fn intact_looks_only_at_chunks_the_pieces_came_from() {
    let bad = Arc::new(Flagged { bytes: vec![0; 10], ok: AtomicBool::new(true) });
    let bad_dyn: Arc<dyn SendSource> = bad.clone();
    let mut b = SendBuffer::new(64, SeqNumber(10));
    b.write(b"head");
    b.write_external(&chunk(&bad_dyn, 0..10));
    b.write(b"tail");
    assert!(intact_after_reading(&b, 10, 18));
    bad.ok.store(false, Ordering::Relaxed);
    assert!(!intact_after_reading(&b, 10, 18));
    assert!(!intact_after_reading(&b, 13, 2));
    assert!(!intact_after_reading(&b, 23, 2));
    assert!(intact_after_reading(&b, 10, 4));
    assert!(intact_after_reading(&b, 24, 4));
    // Nothing read (a pure ACK): nothing to check.
    assert!(intact_after_reading(&b, 14, 0));
    assert!(b.pieces(SeqNumber(14), 0).intact());
}

#[derive(Debug, Clone)]
enum Op {
    Ring(Vec<u8>),
    RingWith(usize),
    Lent { src: usize, start: usize, len: usize },
    Ack(usize),
    Read { at: usize, len: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Ring),
        (0usize..40).prop_map(Op::RingWith),
        (0usize..3, 0usize..200, 0usize..80).prop_map(|(src, start, len)| Op::Lent { src, start, len }),
        (0usize..60).prop_map(Op::Ack),
        (0usize..120, 0usize..120).prop_map(|(at, len)| Op::Read { at, len }),
    ]
}

proptest! {
    /// The buffer against a model that is just the stream's bytes: every read of every range
    /// matches, space accounting matches, and sources are held exactly while their bytes are.
    #[test]
    fn matches_a_plain_byte_model(
        cap in 1usize..96,
        start in any::<u32>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let sources: Vec<Arc<dyn SendSource>> = (0..3u8)
            .map(|k| source(&(0..200u8).map(|i| i.wrapping_mul(7).wrapping_add(k * 85)).collect::<Vec<_>>()))
            .collect();
        let mut b = SendBuffer::new(cap, SeqNumber(start));
        let mut model: Vec<u8> = Vec::new();
        let mut head = SeqNumber(start);
        let mut counter = 0u8;
        for op in ops {
            match op {
                Op::Ring(data) => {
                    let n = b.write(&data);
                    prop_assert!(n <= data.len());
                    model.extend_from_slice(&data[..n]);
                }
                Op::RingWith(max) => {
                    let n = b.write_with(max, |piece| {
                        for byte in piece.iter_mut() {
                            counter = counter.wrapping_add(1);
                            *byte = counter;
                        }
                        piece.len()
                    });
                    let end = counter;
                    model.extend((0..n).map(|i| end.wrapping_sub((n - 1 - i) as u8)));
                }
                Op::Lent { src, start, len } => {
                    let end = (start + len).min(200);
                    let c = chunk(&sources[src], start..end);
                    let n = b.write_external(&c);
                    model.extend_from_slice(&c.bytes()[..n]);
                }
                Op::Ack(k) => {
                    let n = b.ack_to(head + k as u32);
                    prop_assert_eq!(n, k.min(model.len()));
                    model.drain(..n);
                    head += n as u32;
                }
                Op::Read { at, len } => {
                    let want = model.get(at..).map_or(&[][..], |rest| &rest[..len.min(rest.len())]);
                    prop_assert_eq!(read(&b, head + at as u32, len), want);
                }
            }
            prop_assert_eq!(b.len(), model.len());
            prop_assert_eq!(b.free(), cap - model.len());
            prop_assert_eq!(read(&b, head, usize::MAX), model.clone());
            prop_assert!(b.lent_extents() <= MAX_EXTENTS);
        }
        b.ack_to(head + model.len() as u32);
        for s in &sources {
            prop_assert_eq!(Arc::strong_count(s), 1);
        }
    }
}
