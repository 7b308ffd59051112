//! The pcap writer and reader: round trips, hand-built vectors of every variant, hostile files.

mod sim_toys;

use linerate_driver::pcap::{
    PcapError, PcapReader, PcapRecord, PcapWriter, MAGIC_MICROS, MAGIC_NANOS, MAX_RECORD_LEN,
};
use linerate_stack::time::Instant;

fn frame(seq: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    sim_toys::fill_frame(seq, &mut buf);
    buf
}

#[test]
fn written_files_read_back_exactly() {
    let mut writer = PcapWriter::new(Vec::new()).unwrap();
    let frames =
        [(Instant::from_nanos(1), frame(0, 60)), (Instant::from_nanos(3_000_000_123), frame(1, 1514))];
    for (ts, f) in &frames {
        writer.write_frame(*ts, f).unwrap();
    }
    let bytes = writer.into_inner();
    assert_eq!(&bytes[..4], &MAGIC_NANOS.to_le_bytes());
    assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 1514);
    let records = PcapReader::new(&bytes[..]).unwrap().read_all().unwrap();
    let expected: Vec<PcapRecord> = frames
        .iter()
        .map(|(ts, f)| PcapRecord { ts: *ts, orig_len: f.len() as u32, data: f.clone() })
        .collect();
    assert_eq!(records, expected);
}

#[test]
fn tshark_reads_what_we_write() {
    let path = std::env::temp_dir().join(format!("linerate-pcap-rw-{}.pcap", std::process::id()));
    let mut writer = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for seq in 0..7 {
        writer.write_frame(Instant::from_micros(seq * 10), &frame(seq, 64 + seq as usize)).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let counted = sim_toys::tshark_frame_count(&path);
    std::fs::remove_file(&path).unwrap();
    if let Some(count) = counted {
        assert_eq!(count, 7);
    }
}

/// A file header and one record, built by hand in the given byte order and resolution.
fn vector(big_endian: bool, magic: u32, frac: u32, data: &[u8]) -> Vec<u8> {
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(magic));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(65_535));
    out.extend_from_slice(&u32b(1));
    out.extend_from_slice(&u32b(7)); // seconds
    out.extend_from_slice(&u32b(frac));
    out.extend_from_slice(&u32b(data.len() as u32));
    out.extend_from_slice(&u32b(data.len() as u32 + 10)); // truncated capture
    out.extend_from_slice(data);
    out
}

#[test]
fn every_magic_and_byte_order_is_read() {
    let data = frame(9, 40);
    for big_endian in [false, true] {
        for (magic, frac, nanos) in [(MAGIC_MICROS, 250_000, 250_000_000), (MAGIC_NANOS, 250_000, 250_000)] {
            let bytes = vector(big_endian, magic, frac, &data);
            let mut reader = PcapReader::new(&bytes[..]).unwrap();
            assert_eq!(reader.link_type(), 1);
            assert_eq!(reader.snaplen(), 65_535);
            assert_eq!(reader.is_nanosecond(), magic == MAGIC_NANOS);
            let record = reader.next_record().unwrap().unwrap();
            assert_eq!(
                record.ts,
                Instant::from_nanos(7_000_000_000 + nanos),
                "be={big_endian} magic={magic:#x}"
            );
            assert_eq!(record.orig_len, 50);
            assert_eq!(record.data, data);
            assert!(reader.next_record().unwrap().is_none());
        }
    }
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let good = vector(false, MAGIC_MICROS, 0, &frame(1, 40));
    assert!(matches!(
        PcapReader::new(&b"\x0a\x0d\x0d\x0a pcapng"[..]),
        Err(PcapError::BadMagic(0x0a0d_0d0a))
    ));
    assert!(matches!(PcapReader::new(&good[..2]), Err(PcapError::TruncatedFileHeader(24))));
    assert!(matches!(PcapReader::new(&good[..20]), Err(PcapError::TruncatedFileHeader(24))));
    let mut version = good.clone();
    version[4] = 3;
    assert!(matches!(
        PcapReader::new(&version[..]),
        Err(PcapError::UnsupportedVersion { major: 3, minor: 4 })
    ));

    let mut reader = PcapReader::new(&good[..good.len() - 5]).unwrap();
    assert!(matches!(reader.next_record(), Err(PcapError::TruncatedRecord(5))));
    let mut reader = PcapReader::new(&good[..24 + 7]).unwrap();
    assert!(matches!(reader.next_record(), Err(PcapError::TruncatedRecord(9))));

    let mut huge = good.clone();
    huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut reader = PcapReader::new(&huge[..]).unwrap();
    match reader.next_record() {
        Err(e @ PcapError::RecordTooLong { len: u32::MAX, limit: MAX_RECORD_LEN }) => {
            assert!(e.to_string().contains("corrupt"));
        }
        other => panic!("expected RecordTooLong, got {other:?}"),
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_reader() {
    let mut rng = linerate_driver::sim::SimRng::new(77);
    let base = vector(true, MAGIC_NANOS, 1, &frame(2, 60));
    for _ in 0..5_000 {
        let mut bytes = base.clone();
        let flips = rng.range(1..=8);
        for _ in 0..flips {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.next_u64() as u8;
        }
        bytes.truncate(rng.range(0..=bytes.len() as u64) as usize);
        if let Ok(mut reader) = PcapReader::new(&bytes[..]) {
            while let Ok(Some(record)) = reader.next_record() {
                assert!(record.data.len() <= MAX_RECORD_LEN as usize);
            }
        }
    }
}
