//! The few synchronisation primitives the shard module uses, switched to loom's under `cfg(loom)`.
//!
//! Owns nothing but re-exports. Every atomic and shared cell in [`super::ring`] and
//! [`super::stats`] comes from here, so `RUSTFLAGS="--cfg loom"` model-checks the exact code that
//! ships (ci/loom). [`UnsafeCell`] exposes loom's closure API (`with`/`with_mut`) in both builds
//! because loom can only track accesses made through it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's access API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Reads an atomic through `&mut` (no other thread can see it): used by `Drop`.
#[inline]
pub(crate) fn load_exclusive(atomic: &mut AtomicUsize) -> usize {
    #[cfg(loom)]
    {
        atomic.with_mut(|v| *v)
    }
    #[cfg(not(loom))]
    {
        *atomic.get_mut()
    }
}

/// Spin-wait hint; under loom a yield so the model checker can schedule the other thread.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Keeps a value on its own cache line(s) so the producer's and consumer's indices do not
/// false-share. 128 bytes: x86 prefetches adjacent line pairs, and Apple/ARM big cores use 128.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
impl<T> core::ops::DerefMut for CachePadded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
