//! The writing half of `LinkBuffer`: append at the back (netpoll's `Writer`).
//!
//! Appended bytes are unflushed (`malloc_len`) until `flush`. Appends take `&self` and only
//! touch the owned tail at and after `res` (invariants 1–3 of link_buffer.rs); `flush` and
//! `malloc_ack` take `&mut self`, which ends every handed-out `&mut [u8]` first.

use std::io;

use super::block::Block;
use super::link_buffer::{LinkBuffer, Node, State};
use super::pool::{MAX_MALLOC, MIN_BLOCK};

/// Below this size `write_direct` copies: a copy is cheaper than an external block.
const DIRECT_MIN: usize = 2048;

impl State {
    /// Free bytes in the owned tail.
    #[inline]
    pub(super) fn room(&self) -> usize {
        match self.nodes.back() {
            Some(last) if self.tail => last.block.cap() - self.res,
            _ => 0,
        }
    }

    /// Starts a new owned tail: a block of at least `size` bytes.
    #[inline]
    pub(super) fn new_tail(&mut self, size: usize) {
        self.nodes.push_back(Node { block: Block::alloc(size), start: 0, end: 0 });
        self.tail = true;
        self.res = 0;
    }

    /// Hands out `n <= room()` tail bytes as data: they join the last node (or a new node on
    /// the tail block when a gap lies between). Returns their offset in the tail block.
    #[inline]
    pub(super) fn push_data(&mut self, n: usize) -> usize {
        debug_assert!(n <= self.room());
        let off = self.res;
        let last = self.nodes.back_mut().expect("an owned tail has a node");
        if last.end == off {
            last.end += n;
        } else {
            let block = last.block.clone();
            self.nodes.push_back(Node { block, start: off, end: off + n });
        }
        self.res += n;
        off
    }

    /// Copies `b` to the end as unflushed bytes.
    pub(super) fn write(&mut self, mut b: &[u8]) {
        self.mlen += b.len();
        while !b.is_empty() {
            if self.room() == 0 {
                self.new_tail(b.len().clamp(MIN_BLOCK, MAX_MALLOC));
            }
            let k = self.room().min(b.len());
            let off = self.push_data(k);
            let block = &self.nodes.back().expect("tail").block;
            // SAFETY: bytes off..off+k were free tail space until `push_data` just now: no
            // reference to them exists (invariant 2); `b` is the caller's memory.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), block.at(off), k) };
            b = &b[k..];
        }
    }
}

#[cold]
fn too_big(op: &str, n: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("LinkBuffer::{op}({n}): above MAX_MALLOC ({MAX_MALLOC} bytes)"),
    )
}

impl LinkBuffer {
    /// Appends `n` contiguous writable bytes and returns them; they are unflushed (not
    /// readable) until [`flush`](LinkBuffer::flush). Their initial content is unspecified.
    /// `n > MAX_MALLOC` gives `InvalidInput`.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn malloc(&self, n: usize) -> io::Result<&mut [u8]> {
        if n > MAX_MALLOC {
            return Err(too_big("malloc", n));
        }
        if n == 0 {
            return Ok(&mut []);
        }
        // SAFETY: the state borrow ends with this body; no caller code runs meanwhile.
        let st = unsafe { self.st() };
        if st.room() < n {
            st.new_tail(n.max(MIN_BLOCK));
        }
        let off = st.push_data(n);
        st.mlen += n;
        let block = &st.nodes.back().expect("tail").block;
        // SAFETY: free tail space until now, handed out once (res moved past it), readable only
        // after a `&mut self` call ends this borrow (invariant 2); the node keeps the block.
        Ok(unsafe { block.bytes_mut(off, n) })
    }

    /// Keeps only the first `n` unflushed bytes (drops the rest of what was written or
    /// malloc'd since the last flush). `n > malloc_len()` gives `InvalidInput`.
    pub fn malloc_ack(&mut self, n: usize) -> io::Result<()> {
        let st = self.st_mut();
        if n > st.mlen {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LinkBuffer::malloc_ack({n}): only {} unflushed bytes", st.mlen),
            ));
        }
        st.booking = None;
        let tail = st.tail.then(|| st.nodes.back().map(|l| l.block.id())).flatten();
        let mut cut = st.mlen - n;
        st.mlen = n;
        while cut > 0 {
            let last = st.nodes.back_mut().expect("unflushed bytes");
            let k = last.len().min(cut);
            last.end -= k;
            cut -= k;
            if last.len() == 0 && st.nodes.len() > 1 {
                st.nodes.pop_back();
            }
        }
        st.head = st.head.min(st.nodes.len().saturating_sub(1));
        // `&mut self`: nothing handed out is alive, the dropped tail bytes can be reused.
        match (tail, st.nodes.back()) {
            (Some(id), Some(last)) if last.block.id() == id => st.res = last.end,
            _ => st.tail = false,
        }
        Ok(())
    }

    /// Appends a copy of `b` (unflushed).
    #[inline]
    pub fn write_binary(&self, b: &[u8]) -> io::Result<()> {
        // SAFETY: as in `malloc`.
        unsafe { self.st() }.write(b);
        Ok(())
    }

    /// Appends a copy of `s` (unflushed).
    #[inline]
    pub fn write_string(&self, s: &str) -> io::Result<()> {
        self.write_binary(s.as_bytes())
    }

    /// Appends one byte (unflushed).
    #[inline]
    pub fn write_byte(&self, b: u8) -> io::Result<()> {
        self.write_binary(&[b])
    }

    /// Appends `data` as its own read-only block, without copying (small data is copied: that
    /// is cheaper). `data` is dropped when its last holder releases it, on that holder's
    /// thread.
    pub fn write_direct<B: AsRef<[u8]> + Send + 'static>(&self, data: B) -> io::Result<()> {
        let n = data.as_ref().len();
        if n < DIRECT_MIN {
            return self.write_binary(data.as_ref());
        }
        let block = Block::external(data);
        let n = block.cap();
        // SAFETY: as in `malloc` (caller code ran before).
        let st = unsafe { self.st() };
        st.nodes.push_back(Node { block, start: 0, end: n });
        st.tail = false;
        st.user_data = true;
        st.mlen += n;
        Ok(())
    }

    /// Moves all of `other`'s bytes (readable and unflushed) to the end of this buffer, as
    /// unflushed bytes, without copying.
    pub fn append(&self, other: LinkBuffer) -> io::Result<()> {
        let State { mut nodes, head, len, mlen, tail, res, booking, scratch, user_data, .. } =
            other.into_state();
        let n = len + mlen;
        if n > 0 {
            // SAFETY: as in `malloc`; `other`'s leftovers (consumed nodes, scratch: maybe
            // caller data with a Drop) are dropped after this borrow ends.
            let st = unsafe { self.st() };
            if head == 0 && st.nodes.is_empty() {
                // The usual echo or proxy turn: an empty output takes the slice's deque whole,
                // and the slice leaves with the output's empty one.
                std::mem::swap(&mut st.nodes, &mut nodes);
            } else {
                st.nodes.extend(nodes.drain(head..));
            }
            st.tail = tail;
            st.res = res;
            st.user_data |= user_data; // its blocks may hold `write_direct` data
            st.mlen += n;
        }
        // Its deque (the consumed nodes left) serves the next `slice` on this thread.
        super::link_buffer::recycle_nodes(nodes);
        drop((booking, scratch));
        Ok(())
    }

    /// Makes every unflushed byte readable.
    #[inline]
    pub fn flush(&mut self) {
        let st = self.st_mut();
        st.len += st.mlen;
        st.mlen = 0;
    }
}

impl io::Write for LinkBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_binary(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        LinkBuffer::flush(self);
        Ok(())
    }
}
