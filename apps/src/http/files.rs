//! Files under the served root: lookup, the body source for responses, and atomic uploads.
//!
//! Owns every file-system call the HTTP core makes. Promises: a request path never resolves to
//! anything outside the root — `..` is refused by the parser and, here, symlinks that leave the
//! root are refused by `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (or, where openat2 does
//! not exist, by canonicalising and checking the prefix, which is racy against a concurrent
//! rename and is documented as the weaker mode). Only regular files are served; a directory
//! serves its `index.html` or is 404. An upload is written to a temporary file in the target's
//! directory and renamed over the real name only when complete, so an interrupted PUT never
//! leaves a truncated file under the real name.
//!
//! Bodies leave through two paths, chosen per response by the transport (`serve/body.rs`):
//! `linerate serve` maps bodies of 64 KiB and more read-only and lends the mapping to the engine,
//! which copies the page-cache bytes straight into NIC frames (one copy, checksum computed on
//! the way); shorter bodies, the kernel-socket server and the client's uploads use
//! [`FileBody::read_at`] (`pread`), which is one syscall and needs no mapping lifecycle. A
//! mapped file that is truncated underneath would raise SIGBUS and kill the process; the
//! serve side guards its mappings against that (`serve/mapped.rs`: the fault is absorbed, the
//! mapping is marked poisoned and the connection is reset, so no zero byte is delivered as
//! data). `pread` just returns fewer bytes, which the connection turns into an abort.
//!
//! A third path skips the file at response time: [`Root::open_file_kept`] (what `linerate
//! serve`'s prefetch thread calls) also reads a file of at most [`SMALL_BODY_MAX`] bytes into
//! memory once, checked against the metadata the response promises (see
//! [`FileBody::kept_bytes`]), and every response of that open copies from memory.

use super::response::{content_type_for, Etag};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Files of at most this many bytes are kept in memory by [`Root::open_file_kept`]. A
/// keep-alive GET of a small file otherwise spends a `preadv2` per response (about 8 % of a
/// server core at 1 KiB); past 16 KiB the copy, not the system call, dominates a `pread`, and
/// the bound keeps the open-file cache within `BUCKETS` x 16 KiB (1 MiB) of file bytes.
pub const SMALL_BODY_MAX: u64 = 16 * 1024;

/// Name prefix of in-progress uploads; such names are never served or overwritten by requests.
pub const UPLOAD_PREFIX: &[u8] = b".linerate-upload-";

/// Why a file could not be served or stored.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("no such file under the root (or it escapes the root)")]
    NotFound,
    #[error("permission denied by the file system")]
    Forbidden,
    #[error("the target is a directory")]
    Conflict,
    #[error("file-system error: {0}")]
    Io(#[from] io::Error),
}

impl FileError {
    pub fn status(&self) -> u16 {
        match self {
            FileError::NotFound => 404,
            FileError::Forbidden => 403,
            FileError::Conflict => 409,
            FileError::Io(_) => 500,
        }
    }

    fn from_errno(e: io::Error) -> FileError {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR | libc::EXDEV | libc::ELOOP | libc::ENAMETOOLONG) => {
                FileError::NotFound
            }
            Some(libc::EACCES | libc::EPERM) => FileError::Forbidden,
            Some(libc::EISDIR) => FileError::Conflict,
            _ => FileError::Io(e),
        }
    }
}

/// How paths are confined to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveMode {
    /// `openat2` with `RESOLVE_BENEATH`; falls back to [`ResolveMode::Canonicalize`] when the
    /// kernel lacks openat2 (before 5.6).
    #[default]
    Beneath,
    /// Canonicalise and check the prefix. Racy against concurrent renames inside the root.
    Canonicalize,
}

/// The served directory.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    canonical: PathBuf,
    mode: ResolveMode,
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: flags as u64,
        mode: u64::from(mode),
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `path` is NUL-terminated, `how` is a live open_how of the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, FileError> {
    CString::new(bytes).map_err(|_| FileError::NotFound)
}

impl Root {
    /// Opens `path` as the root directory.
    pub fn open(path: &Path, mode: ResolveMode) -> Result<Root, FileError> {
        let canonical = std::fs::canonicalize(path)?;
        let dir: OwnedFd = std::fs::File::open(&canonical)?.into();
        if !std::fs::metadata(&canonical)?.is_dir() {
            return Err(FileError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "root is not a directory",
            )));
        }
        let mut root = Root { dir, canonical, mode };
        if mode == ResolveMode::Beneath {
            if let Err(e) = openat2(root.dir.as_fd(), c".", libc::O_PATH | libc::O_CLOEXEC, 0) {
                if e.raw_os_error() == Some(libc::ENOSYS) {
                    root.mode = ResolveMode::Canonicalize;
                }
            }
        }
        Ok(root)
    }

    /// The mode in force (after any fallback).
    pub fn mode(&self) -> ResolveMode {
        self.mode
    }

    /// Opens `flags` on `rel` (relative, no leading `/`) confined to the root.
    fn open_beneath(&self, rel: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, FileError> {
        let c = cstring(rel)?;
        match self.mode {
            ResolveMode::Beneath => openat2(self.dir.as_fd(), &c, flags, mode).map_err(FileError::from_errno),
            ResolveMode::Canonicalize => {
                let full = self.canonical.join(OsStr::from_bytes(rel));
                let real = std::fs::canonicalize(full).map_err(FileError::from_errno)?;
                if !real.starts_with(&self.canonical) {
                    return Err(FileError::NotFound);
                }
                let c = cstring(real.as_os_str().as_bytes())?;
                // SAFETY: `c` is NUL-terminated; open has no other preconditions.
                let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NOFOLLOW, mode) };
                if fd < 0 {
                    return Err(FileError::from_errno(io::Error::last_os_error()));
                }
                // SAFETY: fresh descriptor owned by nobody else.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
    }

    /// Opens the file a decoded request path (starting with `/`) names, for reading.
    pub fn open_file(&self, path: &[u8]) -> Result<FileBody, FileError> {
        let rel = relative(path)?;
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        let mut file = File::from(self.open_beneath(rel, flags, 0)?);
        let mut meta = file.metadata()?;
        if meta.is_dir() {
            let mut index = rel.to_vec();
            if rel != b"." {
                index.push(b'/');
            } else {
                index.clear();
            }
            index.extend_from_slice(b"index.html");
            file = File::from(self.open_beneath(&index, flags, 0)?);
            meta = file.metadata()?;
            return FileBody::new(file, &meta, content_type_for(b"index.html"));
        }
        FileBody::new(file, &meta, content_type_for(path))
    }

    /// [`Root::open_file`], and a file of at most [`SMALL_BODY_MAX`] bytes is also read into
    /// memory ([`FileBody::kept_bytes`]). Reads the file: call it where waiting for the disk is
    /// allowed (the prefetch thread), never on a shard.
    pub fn open_file_kept(&self, path: &[u8]) -> Result<FileBody, FileError> {
        let mut file = self.open_file(path)?;
        file.keep_if_small();
        Ok(file)
    }

    /// Starts a PUT of `path`: creates the temporary file next to the target. `id` makes the
    /// temporary name unique within the process.
    pub fn begin_upload(&self, path: &[u8], id: u64) -> Result<Upload, FileError> {
        let rel = relative(path)?;
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b"."[..], rel),
        };
        if name.is_empty() || name == b"." {
            return Err(FileError::Conflict);
        }
        let parent = if parent.is_empty() { &b"."[..] } else { parent };
        let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let dir = self.open_beneath(parent, dir_flags, 0)?;
        let name = cstring(name)?;
        if stat_at(&dir, &name).is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR) {
            return Err(FileError::Conflict);
        }
        let mut tmp = UPLOAD_PREFIX.to_vec();
        tmp.extend_from_slice(format!("{}-{id}", std::process::id()).as_bytes());
        let tmp = cstring(&tmp)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        // SAFETY: `tmp` is NUL-terminated and `dir` is a live directory descriptor.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), tmp.as_ptr(), flags, 0o644 as libc::c_uint) };
        if fd < 0 {
            return Err(FileError::from_errno(io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptor owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Upload { dir, tmp, name, file, written: 0, committed: false })
    }
}

/// `st_mode` of `name` in `dir` without following a final symlink.
fn stat_at(dir: &OwnedFd, name: &CStr) -> Option<u32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable stat buffer, `name` NUL-terminated.
    let r =
        unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    // SAFETY: fstatat filled `st` when it returned 0.
    (r == 0).then(|| unsafe { st.assume_init() }.st_mode)
}

/// Turns a decoded request path into a root-relative one; refuses upload temporaries.
fn relative(path: &[u8]) -> Result<&[u8], FileError> {
    let rel = &path[path.iter().position(|&b| b != b'/').unwrap_or(path.len())..];
    if rel.split(|&b| b == b'/').any(|seg| seg.starts_with(UPLOAD_PREFIX) || seg == b"..") {
        return Err(FileError::NotFound);
    }
    Ok(if rel.is_empty() { b"." } else { rel })
}

/// Modification time in nanoseconds since the Unix epoch (0 before it).
fn mtime_nanos(meta: &std::fs::Metadata) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0) * 1_000_000_000 + u64::try_from(meta.mtime_nsec()).unwrap_or(0)
}

/// An open regular file, with the metadata the response needs captured at open time.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    len: u64,
    mtime_unix_nanos: u64,
    content_type: &'static str,
    /// Device and inode: which file this is.
    identity: (u64, u64),
    /// Made once per open, not per response (a cached file answers many).
    etag: Etag,
    /// The whole content, exactly `len` bytes, when it was read at open time (small files
    /// only): responses copy from here instead of reading the file.
    kept: Option<Box<[u8]>>,
}

impl FileBody {
    fn new(file: File, meta: &std::fs::Metadata, content_type: &'static str) -> Result<Self, FileError> {
        if !meta.is_file() {
            return Err(FileError::NotFound);
        }
        let mtime_unix_nanos = mtime_nanos(meta);
        Ok(FileBody {
            file,
            len: meta.len(),
            mtime_unix_nanos,
            content_type,
            identity: (meta.dev(), meta.ino()),
            etag: Etag::new(meta.len(), mtime_unix_nanos),
            kept: None,
        })
    }

    /// Reads the whole file into [`FileBody::kept`] if it has at most [`SMALL_BODY_MAX`] bytes
    /// and did not change while read. One byte more than promised is asked for, and the
    /// metadata is read again afterwards: a file found longer, shorter, replaced or modified
    /// (size or modification time differ from the open's) keeps nothing, and is read per
    /// response as before, so the bytes kept are always those the `Content-Length` and `ETag`
    /// describe. (Linux 6.13+ file systems with multigrain timestamps give a write right
    /// after a `stat` a distinct modification time, which this relies on.)
    fn keep_if_small(&mut self) {
        if self.len == 0 || self.len > SMALL_BODY_MAX {
            return;
        }
        let mut buf = vec![0u8; self.len as usize + 1];
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        if got as u64 != self.len {
            return;
        }
        let Ok(after) = self.file.metadata() else { return };
        let same = after.len() == self.len
            && (after.dev(), after.ino()) == self.identity
            && mtime_nanos(&after) == self.mtime_unix_nanos;
        if same {
            buf.truncate(got);
            self.kept = Some(buf.into_boxed_slice());
        }
    }

    /// The whole content as read at open time (exactly [`FileBody::len`] bytes), if it was
    /// kept ([`Root::open_file_kept`]); responses copy from it and never read the file.
    pub fn kept_bytes(&self) -> Option<&[u8]> {
        self.kept.as_deref()
    }

    /// Size in bytes when opened; this is what `Content-Length` promises.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Last modification, whole Unix seconds (the resolution of HTTP-date).
    pub fn modified_unix_secs(&self) -> u64 {
        self.mtime_unix_nanos / 1_000_000_000
    }

    /// Device and inode number at open time: tells two open files apart.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// The entity tag of the file as opened (size and modification time).
    pub fn etag(&self) -> &Etag {
        &self.etag
    }

    /// Copies file bytes starting at `offset` into `dst`; returns how many were copied. Never
    /// reads past the length captured at open time. A short count before that length means the
    /// file shrank underneath us.
    pub fn read_at(&self, offset: u64, dst: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        let dst_len = dst.len().min(left);
        let dst = &mut dst[..dst_len];
        if let Some(kept) = &self.kept {
            // `offset < len` here whenever anything is asked (`left` is 0 otherwise).
            let from = usize::try_from(offset).unwrap_or(usize::MAX).min(kept.len());
            let n = dst_len.min(kept.len() - from);
            dst[..n].copy_from_slice(&kept[from..from + n]);
            return Ok(n);
        }
        loop {
            match self.file.read_at(dst, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl AsFd for FileBody {
    /// For transports that hand the file to the kernel (sendfile).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A PUT in progress: a temporary file that becomes the target on [`Upload::commit`] and is
/// deleted if dropped before that.
#[derive(Debug)]
pub struct Upload {
    dir: OwnedFd,
    tmp: CString,
    name: CString,
    file: File,
    written: u64,
    committed: bool,
}

impl Upload {
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.file, data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the upload durable and visible under its real name. Returns true if the name did
    /// not exist before (201 Created) and false if it replaced a file (204 No Content).
    pub fn commit(mut self) -> Result<bool, FileError> {
        // Data first, then the rename: after a crash the name holds either the old or the
        // complete new content, never a prefix.
        self.file.sync_data()?;
        let created = stat_at(&self.dir, &self.name).is_none();
        let dir = self.dir.as_raw_fd();
        // SAFETY: both names are NUL-terminated and relative to the same live directory.
        let r = unsafe { libc::renameat(dir, self.tmp.as_ptr(), dir, self.name.as_ptr()) };
        if r != 0 {
            return Err(FileError::from_errno(io::Error::last_os_error()));
        }
        self.committed = true;
        Ok(created)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            // SAFETY: NUL-terminated name relative to a live directory descriptor.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::http::file_cache::tests::TempRoot;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn small_files_are_kept_whole_and_large_or_empty_ones_are_not() {
        let t = TempRoot::new("sizes");
        let limit = SMALL_BODY_MAX as usize;
        for (name, len) in [("one", 1), ("kib", 1024), ("limit", limit), ("over", limit + 1), ("empty", 0)] {
            std::fs::write(t.0.join(name), pattern(len)).unwrap();
        }
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        for (name, kept) in [("one", true), ("kib", true), ("limit", true), ("over", false), ("empty", false)]
        {
            let f = root.open_file_kept(format!("/{name}").as_bytes()).unwrap();
            assert_eq!(f.kept_bytes().is_some(), kept, "{name}");
            if let Some(bytes) = f.kept_bytes() {
                assert_eq!(bytes, &pattern(f.len() as usize)[..], "{name}");
            }
            assert!(root.open_file(format!("/{name}").as_bytes()).unwrap().kept_bytes().is_none());
        }
    }

    #[test]
    fn read_at_serves_the_kept_bytes_even_after_the_file_changes() {
        let t = TempRoot::new("read");
        std::fs::write(t.0.join("a"), pattern(3000)).unwrap();
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        let f = root.open_file_kept(b"/a").unwrap();
        // Truncated in place: the kept snapshot (what Content-Length and ETag describe) stands.
        std::fs::write(t.0.join("a"), b"short").unwrap();
        let mut buf = vec![0u8; 5000];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 3000);
        assert_eq!(&buf[..3000], &pattern(3000)[..]);
        assert_eq!(f.read_at(2990, &mut buf).unwrap(), 10);
        assert_eq!(&buf[..10], &pattern(3000)[2990..]);
        assert_eq!(f.read_at(3000, &mut buf).unwrap(), 0);
        assert_eq!(f.read_at(u64::MAX, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_file_changed_between_its_metadata_and_its_read_keeps_nothing() {
        let t = TempRoot::new("race");
        let path = t.0.join("a");
        std::fs::write(&path, pattern(2000)).unwrap();
        let root = Root::open(&t.0, ResolveMode::default()).unwrap();
        // Grown after the metadata was read: one byte more than promised is found.
        let mut grown = root.open_file(b"/a").unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"x").unwrap();
        grown.keep_if_small();
        assert!(grown.kept_bytes().is_none());
        // Shrunk: fewer bytes than promised.
        let mut shrunk = root.open_file(b"/a").unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1000).unwrap();
        shrunk.keep_if_small();
        assert!(shrunk.kept_bytes().is_none());
        // Rewritten in place with the same size: the modification time differs.
        let mut rewritten = root.open_file(b"/a").unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(&[7u8; 1000]).unwrap();
        rewritten.keep_if_small();
        assert!(rewritten.kept_bytes().is_none());
        // Either way the response still reads the file per request, within the promised length.
        let mut buf = vec![0u8; 1000];
        assert_eq!(rewritten.read_at(0, &mut buf).unwrap(), 1000);
        assert_eq!(buf, [7u8; 1000]);
    }
}
