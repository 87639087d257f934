//! `Block`: one reference-counted chunk of bytes, the unit a `LinkBuffer` links.
//!
//! A block is a header (reference count, data pointer, capacity, kind) plus its bytes. The bytes
//! of a pooled or heap block are always initialized (fresh ones are zeroed), so any range may
//! be handed out as `&[u8]` or `&mut [u8]`. An external block wraps caller data
//! (`write_direct`) and is never written.
//!
//! A `Block` value is one counted reference. The count is the only shared mutable field; which
//! byte ranges a holder may read or write is decided by the `LinkBuffer` invariants
//! (link_buffer.rs), not here: this type only hands out raw ranges to callers that uphold them.
//! When the last reference drops, a pooled block goes to the pool of the dropping thread
//! (pool.rs); the `Acquire` fence there orders every earlier access of every former holder
//! before the block's reuse.

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use super::pool;

pub(super) enum Kind {
    /// From the pool; the value is the size class.
    Pooled(u8),
    /// Larger than every class: its own allocation, freed with the block.
    Heap,
    /// Caller data appended without copying; read only. A leaked box (freed by recycle),
    /// raw so that no `Box` move asserts uniqueness over bytes that `data` points into.
    External(NonNull<dyn AsRef<[u8]> + Send>),
}

pub(super) struct Header {
    refs: AtomicUsize,
    pub(super) data: NonNull<u8>,
    pub(super) cap: usize,
    pub(super) kind: Kind,
}

/// One counted reference to a block.
pub(crate) struct Block(NonNull<Header>);

// SAFETY: the header's only mutable field is the atomic count; the bytes are plain memory whose
// ranges are partitioned between holders by the LinkBuffer invariants, so a holder may live on
// any thread. External data is `Send`.
unsafe impl Send for Block {}

impl Header {
    /// A header for `cap` bytes at `data`, with one reference.
    pub(super) fn new(data: NonNull<u8>, cap: usize, kind: Kind) -> NonNull<Header> {
        let h = Box::new(Header { refs: AtomicUsize::new(1), data, cap, kind });
        NonNull::from(Box::leak(h))
    }
}

impl Block {
    /// A block of at least `size` writable bytes (pooled when a class fits).
    #[inline]
    pub(crate) fn alloc(size: usize) -> Block {
        Block(pool::get(size))
    }

    /// A read-only block over caller data, no copy.
    pub(crate) fn external<B: AsRef<[u8]> + Send + 'static>(data: B) -> Block {
        let boxed: Box<dyn AsRef<[u8]> + Send> = Box::new(data);
        let raw = NonNull::from(Box::leak(boxed));
        // SAFETY: `raw` is a live, leaked box that only this header will own; the slice it
        // gives stays valid and unchanged while the value is neither moved (it is boxed) nor
        // touched (nobody else can reach it) — until recycle frees the box with the header.
        let s: &[u8] = unsafe { raw.as_ref() }.as_ref();
        let (ptr, len) = (NonNull::from(s).cast::<u8>(), s.len());
        Block(Header::new(ptr, len, Kind::External(raw)))
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the header lives while any reference (self) does.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.header().cap
    }

    /// Whether the bytes may be written (not external).
    #[inline]
    pub(crate) fn writable(&self) -> bool {
        !matches!(self.header().kind, Kind::External(_))
    }

    /// Identity of the block (for comparing references).
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        self.0.as_ptr() as *const ()
    }

    /// Raw pointer to byte `off`.
    #[inline]
    pub(crate) fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off <= self.cap());
        // SAFETY: off <= cap, within (or one past) the allocation.
        unsafe { self.header().data.as_ptr().add(off) }
    }

    /// Bytes `off..off + len` as a shared slice.
    ///
    /// # Safety
    /// `off + len <= cap`; no `&mut` to any byte of the range exists or is created while the
    /// result lives; the block lives while the result does.
    #[inline]
    pub(crate) unsafe fn bytes<'a>(&self, off: usize, len: usize) -> &'a [u8] {
        debug_assert!(off + len <= self.cap());
        // SAFETY: in bounds, initialized (module doc), aliasing per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.at(off), len) }
    }

    /// Bytes `off..off + len` as a mutable slice.
    ///
    /// # Safety
    /// As `bytes`, and no other reference to any byte of the range exists or is created while
    /// the result lives; the block is writable.
    #[inline]
    pub(crate) unsafe fn bytes_mut<'a>(&self, off: usize, len: usize) -> &'a mut [u8] {
        debug_assert!(off + len <= self.cap() && self.writable());
        // SAFETY: in bounds, initialized, exclusive per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.at(off), len) }
    }
}

impl Clone for Block {
    #[inline]
    fn clone(&self) -> Block {
        // Relaxed, as in Arc: the new reference is made from an existing one.
        self.header().refs.fetch_add(1, Ordering::Relaxed);
        Block(self.0)
    }
}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        let refs = &self.header().refs;
        // The common case, a block held by one buffer, skips the read-modify-write: a count of
        // one read by its only holder cannot change (no one else can clone it), and the
        // Acquire load orders the accesses of former holders (their Release decrements)
        // before the reuse below.
        if refs.load(Ordering::Acquire) != 1 {
            if refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Every former holder's accesses happen before the reuse or free below.
            fence(Ordering::Acquire);
        }
        pool::recycle(self.0);
    }
}

impl Header {
    /// Makes a recycled header live again with one reference.
    #[inline]
    pub(super) fn revive(&self) {
        self.refs.store(1, Ordering::Relaxed);
    }
}
