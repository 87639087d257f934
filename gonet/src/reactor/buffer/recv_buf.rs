//! `RecvBuf`: one pooled block that socket reads fill and a consumer drains from the front —
//! the ciphertext buffer of a TLS connection (tls/), where records are opened in place.
//!
//! It is the smallest buffer that can keep what the consumer did not take yet: 16 bytes and
//! no block while empty (an idle connection keeps none), a block from the thread's pool
//! (pool.rs) from a read until its last byte is consumed, then the block goes back to the pool.
//! A read may append to what is kept (the start of a record whose end has not arrived): the
//! kept bytes move to the block's front, or into a bigger block, when the space after them is
//! too small. A `LinkBuffer` would do the same with a node list (about 200 bytes more per
//! connection, kept while idle) but could not lend a record split over two blocks in one
//! piece; nothing here ever needs more than one block.
//!
//! # Invariants
//!
//! 1. The block, when present, is this buffer's alone: taken fresh from the pool by `fill`,
//!    never cloned, dropped (back to the pool) when it empties. So `&self`/`&mut self` of the
//!    buffer is exclusive access to its bytes.
//! 2. `start <= end <= cap`; bytes `start..end` are the unconsumed bytes a read wrote; the
//!    buffer holds a block exactly when `start < end`.

use std::io;

use super::block::Block;

/// A single-block receive buffer (see the top of this file).
pub(crate) struct RecvBuf {
    block: Option<Block>,
    start: u32,
    end: u32,
}

impl RecvBuf {
    /// An empty buffer, holding no block.
    pub(crate) const fn new() -> RecvBuf {
        RecvBuf { block: None, start: 0, end: 0 }
    }

    /// Bytes read and not yet consumed.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads into a fresh pooled block of at least `size` bytes (`size` at most 4 GiB): `f`
    /// (typically `recv(2)`) gets `size` writable bytes and returns how many it wrote, which
    /// become the buffer's bytes. Only on an empty buffer (what it holds is not kept:
    /// `InvalidInput`). A read that got nothing, failed, or reported more than it was lent
    /// (`InvalidData`) leaves the buffer empty, its block back in the pool.
    pub(crate) fn fill<F>(&mut self, size: usize, f: F) -> io::Result<usize>
    where
        F: FnOnce(&mut [u8]) -> io::Result<usize>,
    {
        if !self.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "RecvBuf::fill: the buffer still holds bytes",
            ));
        }
        let size = size.clamp(1, u32::MAX as usize);
        let block = Block::alloc(size);
        // SAFETY: `size <= cap` (`alloc` gives at least `size`); the block is fresh from the
        // pool, referenced only here (invariant 1), and the slice dies with `f`'s call.
        let n = f(unsafe { block.bytes_mut(0, size) })?;
        if n > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("RecvBuf::fill: the reader reported {n} bytes into {size}"),
            ));
        }
        if n > 0 {
            self.block = Some(block);
            (self.start, self.end) = (0, n as u32);
        }
        Ok(n)
    }

    /// Reads more after the bytes kept: `f` gets all the free space after them, at least
    /// `room` bytes (moving the kept bytes to the block's front, or into a fresh block that
    /// fits them and `room` more, when the space after them is smaller), and returns how many
    /// it wrote, which are appended. On an empty buffer this is `fill` with a block of at
    /// least `room`. A read that reported more than it was lent gives `InvalidData` and
    /// appends nothing; a failed read appends nothing.
    pub(crate) fn fill_more<F>(&mut self, room: usize, f: F) -> io::Result<usize>
    where
        F: FnOnce(&mut [u8]) -> io::Result<usize>,
    {
        let Some(block) = &self.block else {
            return self.fill(room, f);
        };
        let (len, room) = (self.len(), room.max(1));
        if block.cap() - (self.end as usize) < room {
            if block.cap() - len >= room {
                // SAFETY: both ranges lie within the block (invariant 2); `copy` allows them
                // to overlap; the block is ours alone (invariant 1) and no slice of it lives.
                unsafe { std::ptr::copy(block.at(self.start as usize), block.at(0), len) };
            } else {
                let bigger = Block::alloc(len.saturating_add(room));
                if bigger.cap() > u32::MAX as usize {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "RecvBuf::fill_more: more than 4 GiB",
                    ));
                }
                // SAFETY: the source range is the kept bytes (invariant 2), the destination
                // the front of a fresh block of more than `len` bytes; distinct allocations.
                unsafe {
                    std::ptr::copy_nonoverlapping(block.at(self.start as usize), bigger.at(0), len)
                };
                self.block = Some(bigger);
            }
            (self.start, self.end) = (0, len as u32);
        }
        let block = self.block.as_ref().expect("kept bytes");
        let (end, free) = (self.end as usize, block.cap() - self.end as usize);
        // SAFETY: `end..cap` lies within the block and holds no kept byte (invariant 2); the
        // block is ours alone (invariant 1) and the slice dies with `f`'s call.
        let n = f(unsafe { block.bytes_mut(end, free) })?;
        if n > free {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("RecvBuf::fill_more: the reader reported {n} bytes into {free}"),
            ));
        }
        self.end += n as u32;
        Ok(n)
    }

    /// The unconsumed bytes, writable (records are opened where they lie).
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        match &self.block {
            // SAFETY: `start..end` lies within the block (invariant 2); the block is ours
            // alone (invariant 1) and this borrow of `self` is exclusive; it lives while
            // `self` does.
            Some(b) => unsafe { b.bytes_mut(self.start as usize, len) },
            None => &mut [],
        }
    }

    /// The unconsumed bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.block {
            // SAFETY: `start..end` lies within the block (invariant 2); the block is ours
            // alone (invariant 1) and written only under `&mut self`, which this borrow
            // excludes; it lives while `self` does.
            Some(b) => unsafe { b.bytes(self.start as usize, self.len()) },
            None => &[],
        }
    }

    /// Consumes the first `n` bytes (at most `len()`); the block goes back to the pool when
    /// none is left.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len()) as u32;
        if self.start == self.end {
            self.clear();
        }
    }

    /// Drops every byte; the block goes back to the pool.
    pub(crate) fn clear(&mut self) {
        self.block = None;
        (self.start, self.end) = (0, 0);
    }
}

impl Default for RecvBuf {
    fn default() -> RecvBuf {
        RecvBuf::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_consume_and_give_back() {
        // What an idle TLS connection pays for it.
        assert_eq!(std::mem::size_of::<RecvBuf>(), 16);
        let mut b = RecvBuf::new();
        assert!(b.is_empty());
        assert_eq!(b.bytes(), b"");
        let n = b
            .fill(8192, |buf| {
                assert_eq!(buf.len(), 8192);
                buf[..5].copy_from_slice(b"hello");
                Ok(5)
            })
            .unwrap();
        assert_eq!(n, 5);
        assert_eq!((b.len(), b.bytes()), (5, &b"hello"[..]));
        // Not emptied: a second read would overwrite what is kept.
        let e = b.fill(8192, |_| Ok(1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(b.bytes(), b"hello");
        b.consume(2);
        assert_eq!(b.bytes(), b"llo");
        b.consume(3);
        assert!(b.is_empty());
        assert!(b.block.is_none(), "an empty buffer holds no block");
        // The block went back to this thread's pool: the next read reuses it.
        let before = crate::reactor::buffer_stats().allocated_here;
        b.fill(8192, |buf| {
            buf[0] = b'x';
            Ok(1)
        })
        .unwrap();
        assert_eq!(crate::reactor::buffer_stats().allocated_here, before);
        assert_eq!(b.bytes(), b"x");
        b.clear();
        assert!(b.is_empty() && b.block.is_none());
    }

    #[test]
    fn fill_more_appends_moving_or_growing_only_when_it_must() {
        let mut b = RecvBuf::new();
        b.fill(4096, |buf| {
            buf[..4096].fill(b'a');
            Ok(4096)
        })
        .unwrap();
        let cap = b.block.as_ref().unwrap().cap();
        b.consume(4000);
        // Room after the kept bytes: appended in place, nothing moves.
        if cap > 4096 {
            let n = b.fill_more(1, |buf| {
                assert_eq!(buf.len(), cap - 4096);
                buf[0] = b'b';
                Ok(1)
            });
            assert_eq!(n.unwrap(), 1);
            assert_eq!(b.start, 4000);
        }
        let kept = b.bytes().to_vec();
        // Not enough room after them, enough in the block: moved to the front.
        let want = cap - kept.len();
        b.fill_more(want, |buf| {
            assert_eq!(buf.len(), want);
            buf[..2].copy_from_slice(b"cd");
            Ok(2)
        })
        .unwrap();
        assert_eq!(b.start, 0);
        assert_eq!(&b.bytes()[..kept.len()], &kept[..]);
        assert_eq!(&b.bytes()[kept.len()..], b"cd");
        // More than the block holds: a bigger block with the kept bytes first.
        let kept = b.bytes().to_vec();
        b.fill_more(cap, |buf| {
            assert!(buf.len() >= cap);
            buf[0] = b'e';
            Ok(1)
        })
        .unwrap();
        assert!(b.block.as_ref().unwrap().cap() >= kept.len() + cap);
        assert_eq!(&b.bytes()[..kept.len()], &kept[..]);
        assert_eq!(b.bytes()[kept.len()], b'e');
        // Writable in place, and an overlong report appends nothing.
        b.bytes_mut()[0] = b'z';
        assert_eq!(b.bytes()[0], b'z');
        let len = b.len();
        let e = b.fill_more(1, |buf| Ok(buf.len() + 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(b.len(), len);
        // On an empty buffer it is `fill`.
        b.clear();
        assert_eq!(b.fill_more(100, |buf| Ok(buf.len().min(3))).unwrap(), 3);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn empty_failed_and_overlong_reads_keep_nothing() {
        let mut b = RecvBuf::new();
        assert_eq!(b.fill(4096, |_| Ok(0)).unwrap(), 0);
        assert!(b.is_empty() && b.block.is_none());
        let e = b.fill(4096, |_| Err(io::Error::from(io::ErrorKind::WouldBlock))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(b.is_empty() && b.block.is_none());
        let e = b.fill(4096, |buf| Ok(buf.len() + 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(b.is_empty() && b.block.is_none());
    }
}
