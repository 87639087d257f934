//! The socket side of `LinkBuffer`: free tail space for read(2) (`book`/`book_ack`, `fill`)
//! and the readable bytes as iovecs for sendmsg(2) (`io_slices`).
//!
//! `book` hands out tail space under `&self` (invariant 2 of link_buffer.rs); `book_ack` takes
//! `&mut self` because it makes those bytes readable. A poller that shares the buffer with a
//! reader holding slices (so has only `&self`) uses `fill`, which lends the space to a closure
//! and commits what it wrote when the closure returns.

use std::io::{self, IoSlice};

use super::link_buffer::{Booking, LinkBuffer, Node, State};
use super::pool::MAX_MALLOC;

/// Size of the block a `book` starts when the tail is too short (and `max` allows it).
pub const BOOK_BLOCK: usize = 8192;

impl State {
    /// Reserves tail space: at least `min` (clamped to 1..=MAX_MALLOC), at most `max` bytes.
    /// Returns the booking and whether a new block was started for it.
    fn reserve(&mut self, min: usize, max: usize) -> (Booking, bool) {
        let min = min.clamp(1, MAX_MALLOC);
        let max = max.max(min);
        let fresh = self.room() < min;
        if fresh {
            self.new_tail(max.min(BOOK_BLOCK).max(min));
        }
        let len = self.room().min(max);
        let last = self.nodes.back().expect("tail");
        let b = Booking { id: last.block.id() as usize, off: self.res, len };
        self.res += len;
        (b, fresh)
    }

    /// Appends the first `n` bytes of booking `b` to the stream, after every byte already in
    /// it. Returns false when the booked block is no longer held (nothing appended).
    fn commit(&mut self, b: Booking, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let Some(i) = self.nodes.iter().rposition(|x| x.block.id() as usize == b.id) else {
            debug_assert!(false, "booked block dropped");
            return false;
        };
        let last = self.nodes.len() - 1;
        if i == last && self.nodes[i].end == b.off {
            self.nodes[i].end += n;
        } else {
            let block = self.nodes[i].block.clone();
            self.nodes.push_back(Node { block, start: b.off, end: b.off + n });
        }
        if self.tail && (i != last || self.res != b.off + b.len) {
            // Something was appended after the booking (in a later block, or after it in this
            // one): the new last node is not the block's highest, so `res` could no longer be
            // rewound to the last node's end. Give up the tail.
            self.tail = false;
        }
        true
    }

    /// Gives back the unused end of booking `b` when nothing was handed out after it.
    /// Only when no reference to `b`'s bytes past `n` can be alive.
    fn unreserve(&mut self, b: Booking, n: usize) {
        let last_is_b = self.nodes.back().is_some_and(|l| l.block.id() as usize == b.id);
        if self.tail && last_is_b && self.res == b.off + b.len {
            self.res = b.off + n;
        }
    }
}

impl LinkBuffer {
    /// Free tail space for a read: contiguous, at least `min` and at most `max` bytes (`min` is
    /// clamped to `1..=MAX_MALLOC`). The bytes become readable with
    /// [`book_ack`](LinkBuffer::book_ack); a second `book` before it hands out fresh space.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn book(&self, min: usize, max: usize) -> &mut [u8] {
        // SAFETY: the state borrow ends with this body; no caller code runs meanwhile.
        let st = unsafe { self.st() };
        let (b, _) = st.reserve(min, max);
        st.booking = Some(b);
        let block = &st.nodes.back().expect("tail").block;
        // SAFETY: tail space handed out once (res moved past it), readable only after a
        // `&mut self` call ends this borrow (invariant 2); the node keeps the block.
        unsafe { block.bytes_mut(b.off, b.len) }
    }

    /// The first `n` bytes of the last `book` (clamped to its length; nothing without one)
    /// become readable now, and so does every unflushed byte before them. An empty buffer
    /// then gives up its blocks (an idle connection holds none).
    pub fn book_ack(&mut self, n: usize) {
        let st = self.st_mut();
        let Some(b) = st.booking.take() else { return };
        let n = n.min(b.len);
        let n = if st.commit(b, n) { n } else { 0 };
        st.unreserve(b, n);
        st.len += st.mlen + n;
        st.mlen = 0;
        if st.len == 0 {
            st.release();
        }
    }

    /// Books tail space as `book` does and lends it to `f` (typically read(2)); the first `n`
    /// bytes, `n` being what `f` returns, are appended: readable now, or unflushed when
    /// unflushed bytes precede them. Returns `n`. A buffer that got nothing and holds nothing
    /// gives the booked block back. `f` returning more than it was lent gives `InvalidData`.
    pub fn fill<F>(&self, min: usize, max: usize, f: F) -> io::Result<usize>
    where
        F: FnOnce(&mut [u8]) -> io::Result<usize>,
    {
        let (b, fresh, undo, ptr) = {
            // SAFETY: the borrow ends before `f` runs.
            let st = unsafe { self.st() };
            let undo = (st.tail, st.res, st.nodes.len());
            let (b, fresh) = st.reserve(min, max);
            (b, fresh, undo, st.nodes.back().expect("tail").block.at(b.off))
        };
        // SAFETY: tail space handed out once (invariant 2); the closure cannot keep it (the
        // borrow is for the call only), and the block is held by our node: nothing but
        // `fill` itself drops a node under `&self`.
        let r = f(unsafe { std::slice::from_raw_parts_mut(ptr, b.len) });
        // SAFETY: as above, the closure has returned.
        let st = unsafe { self.st() };
        let n = match r {
            Ok(n) if n <= b.len => n,
            _ => 0,
        };
        st.commit(b, n);
        // The lent range is dead: its unused end may be handed out again.
        st.unreserve(b, n);
        if st.mlen > 0 {
            st.mlen += n;
        } else {
            st.len += n;
        }
        let mut gone = None;
        if n == 0 && fresh && st.nodes.len() == undo.2 + 1 && st.res == b.off {
            // Nothing arrived and nothing was appended meanwhile: give the block back.
            gone = st.nodes.pop_back();
            (st.tail, st.res) = (undo.0, undo.1);
            st.head = st.head.min(st.nodes.len().saturating_sub(1));
        }
        drop(gone);
        match r {
            Ok(n) if n > b.len => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("LinkBuffer::fill: the reader reported {n} bytes into {}", b.len),
            )),
            r => r,
        }
    }

    /// Fills `out` with the readable bytes (not consumed), one slice per block, and returns
    /// how many slices it filled.
    pub fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        // SAFETY: the state borrow ends with this body.
        let st = unsafe { self.st() };
        let (mut left, mut i) = (st.len, 0);
        for node in st.nodes.range(st.head..) {
            if left == 0 || i == out.len() {
                break;
            }
            let k = node.len().min(left);
            if k == 0 {
                continue;
            }
            // SAFETY: readable bytes, immutable and alive while `self` is borrowed
            // (invariants 1 and 4); 'a is that borrow.
            out[i] = IoSlice::new(unsafe { node.block.bytes(node.start, k) });
            left -= k;
            i += 1;
        }
        i
    }
}
