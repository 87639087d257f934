//! The reading half of `LinkBuffer`: consume from the front (netpoll's `Reader`).
//!
//! Every operation takes `&self`; returned slices borrow the buffer until `release`
//! (invariants 1, 4 and 5 of link_buffer.rs). A request for more than `len()` bytes fails with
//! `UnexpectedEof` and consumes nothing.

use std::io;

use super::block::Block;
use super::link_buffer::{LinkBuffer, Node, State};

#[cold]
fn eof(op: &str, n: usize, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("LinkBuffer::{op}({n}): only {len} readable bytes"),
    )
}

/// Index of the first `b` in `s`, eight bytes at a time: a zero byte of `word ^ pattern` is a
/// match, and `(x - 0x01..) & !x & 0x80..` flags the lowest zero byte exactly (a borrow can
/// only flag bytes above it).
#[inline]
fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * b as u64;
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes")) ^ pat;
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words.remainder().iter().position(|&x| x == b).map(|i| base + i)
}

impl State {
    #[inline]
    fn check(&self, op: &str, n: usize) -> io::Result<()> {
        if n > self.len {
            return Err(eof(op, n, self.len));
        }
        Ok(())
    }

    /// The first `n` readable bytes when they lie in one block (after `front`).
    #[inline]
    fn contiguous<'a>(&mut self, n: usize) -> Option<&'a [u8]> {
        self.front();
        let node = self.nodes.get(self.head)?;
        if node.len() < n {
            return None;
        }
        // SAFETY: n <= len, so these are readable bytes: immutable while the buffer is
        // borrowed (invariant 1), kept alive by the node until `release` (invariant 4). The
        // caller ties 'a to its `&self`.
        Some(unsafe { node.block.bytes(node.start, n) })
    }

    /// Counts `n` more bytes kept until `release` (saturating: a count that large is far past
    /// any cap).
    #[inline]
    fn add_held(&mut self, n: usize) {
        self.held = self.held.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Consumes `n <= len` bytes.
    #[inline]
    pub(super) fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        self.add_held(n);
        while n > 0 {
            self.front();
            let node = &mut self.nodes[self.head];
            let k = node.len().min(n);
            node.start += k;
            n -= k;
        }
    }

    /// Copies the first `dst.len() <= len` readable bytes into `dst`, consuming nothing.
    pub(super) fn copy_out(&self, dst: &mut [u8]) {
        let mut done = 0;
        for node in self.nodes.range(self.head..) {
            if done == dst.len() {
                break;
            }
            let k = node.len().min(dst.len() - done);
            // SAFETY: readable bytes (invariant 1); `dst` is the caller's own memory.
            let src = unsafe { node.block.bytes(node.start, k) };
            dst[done..done + k].copy_from_slice(src);
            done += k;
        }
        debug_assert_eq!(done, dst.len());
    }

    /// The first `n` readable bytes, copied into a scratch block kept until `release`.
    #[cold]
    fn scratch_copy<'a>(&mut self, n: usize) -> &'a [u8] {
        let block = Block::alloc(n);
        // SAFETY: a fresh block only this function references; n <= its capacity.
        let dst = unsafe { block.bytes_mut(0, n) };
        self.copy_out(dst);
        // SAFETY: the block is kept in `scratch` (never written again) until `release`
        // (invariant 5); the caller ties 'a to its `&self`.
        let s = unsafe { block.bytes(0, n) };
        self.scratch.push(block);
        self.add_held(n);
        s
    }

    /// Offset of the first `delim` among the readable bytes at or after offset `from`,
    /// scanned in place.
    fn find(&self, delim: u8, from: usize) -> Option<usize> {
        let mut base = 0;
        for node in self.nodes.range(self.head..) {
            if base >= self.len {
                break;
            }
            let k = node.len().min(self.len - base);
            if base + k > from {
                let skip = from.saturating_sub(base);
                // SAFETY: readable bytes (invariant 1).
                let bytes = unsafe { node.block.bytes(node.start + skip, k - skip) };
                if let Some(i) = memchr(delim, bytes) {
                    return Some(base + skip + i);
                }
            }
            base += k;
        }
        None
    }
}

impl LinkBuffer {
    /// Consumes `n` bytes and returns them as one slice: the bytes in place when they lie in
    /// one block, else a copy kept until [`release`](LinkBuffer::release).
    #[inline]
    pub fn next(&self, n: usize) -> io::Result<&[u8]> {
        // SAFETY: the state borrow ends with this body; no caller code runs meanwhile.
        let st = unsafe { self.st() };
        st.check("next", n)?;
        let s = match st.contiguous(n) {
            Some(s) => s,
            None if n == 0 => return Ok(&[]),
            None => st.scratch_copy(n),
        };
        st.consume(n);
        Ok(s)
    }

    /// Like [`next`](LinkBuffer::next) without consuming.
    #[inline]
    pub fn peek(&self, n: usize) -> io::Result<&[u8]> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("peek", n)?;
        Ok(match st.contiguous(n) {
            Some(s) => s,
            None if n == 0 => &[],
            None => st.scratch_copy(n),
        })
    }

    /// Consumes `n` bytes without looking at them.
    #[inline]
    pub fn skip(&self, n: usize) -> io::Result<()> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("skip", n)?;
        st.consume(n);
        Ok(())
    }

    /// Consumes through the first `delim` (included) and returns those bytes, as `next` does.
    /// Without a `delim` among the readable bytes: `UnexpectedEof`, nothing consumed.
    pub fn until(&self, delim: u8) -> io::Result<&[u8]> {
        // SAFETY: the borrow ends before `next` takes its own.
        let i = unsafe { self.st() }.find(delim, 0);
        match i {
            Some(i) => self.next(i + 1),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("LinkBuffer::until({delim:#04x}): not among {} readable bytes", self.len()),
            )),
        }
    }

    /// Offset of the first `delim` among the readable bytes at or after offset `from`, found
    /// in place (no copy, nothing consumed): a reader waiting for a delimiter scans only
    /// what arrived since its last look.
    pub fn find_from(&self, delim: u8, from: usize) -> Option<usize> {
        // SAFETY: the borrow ends with this body; no caller code runs meanwhile.
        unsafe { self.st() }.find(delim, from)
    }

    /// Consumes `n` bytes and returns a copy.
    pub fn read_binary(&self, n: usize) -> io::Result<Vec<u8>> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("read_binary", n)?;
        let mut v = vec![0; n];
        st.copy_out(&mut v);
        st.consume(n);
        Ok(v)
    }

    /// Consumes `n` bytes and returns them as a `String`. Bytes that are not UTF-8 give
    /// `InvalidData` and stay unconsumed.
    pub fn read_string(&self, n: usize) -> io::Result<String> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("read_string", n)?;
        let mut v = vec![0; n];
        st.copy_out(&mut v);
        let s = String::from_utf8(v).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("LinkBuffer::read_string({n}): {}", e.utf8_error()),
            )
        })?;
        st.consume(n);
        Ok(s)
    }

    /// Consumes one byte.
    #[inline]
    pub fn read_byte(&self) -> io::Result<u8> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("read_byte", 1)?;
        let b = st.contiguous(1).expect("a readable byte")[0];
        st.consume(1);
        Ok(b)
    }

    /// Consumes `n` bytes into a new buffer that shares their blocks (reference counts, no
    /// copy). The result owns no block tail (appending to it starts a new block), is `Send`,
    /// and keeps the blocks alive after this buffer releases or drops them.
    pub fn slice(&self, n: usize) -> io::Result<LinkBuffer> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        st.check("slice", n)?;
        let mut nodes = super::link_buffer::spare_nodes();
        let mut left = n;
        let mut i = st.head;
        while left > 0 {
            let node = &st.nodes[i];
            let k = node.len().min(left);
            if k > 0 {
                let block = node.block.clone();
                nodes.push_back(Node { block, start: node.start, end: node.start + k });
            }
            left -= k;
            i += 1;
        }
        st.consume(n);
        // The shared blocks may hold caller data (`write_direct`) whose `Drop` runs with them.
        let user_data = st.user_data;
        // Every field named: `..State::default()` would build (and drop) a second node deque.
        Ok(LinkBuffer::from_state(State {
            nodes,
            head: 0,
            len: n,
            mlen: 0,
            tail: false,
            res: 0,
            booking: None,
            scratch: Vec::new(),
            held: 0,
            user_data,
        }))
    }
}

impl io::Read for &LinkBuffer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: as in `next`.
        let st = unsafe { self.st() };
        let n = buf.len().min(st.len);
        st.copy_out(&mut buf[..n]);
        st.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memchr_finds_the_first_match() {
        let mut s = [0u8; 40];
        for (i, x) in s.iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(37) | 1; // odd bytes: never 0x00 or 0x80
        }
        assert_eq!(super::memchr(0, &s), None);
        assert_eq!(super::memchr(0x80, &s), None);
        for at in 0..s.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut t = s;
                t[at] = b;
                let want = t.iter().position(|&x| x == b);
                assert_eq!(super::memchr(b, &t), want, "byte {b:#x} at {at}");
                // A second match after the first changes nothing.
                if at + 1 < t.len() {
                    t[at + 1] = b;
                    assert_eq!(super::memchr(b, &t), want);
                }
            }
        }
    }
}
