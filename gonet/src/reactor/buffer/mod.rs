//! Placeholder `LinkBuffer` (the real one comes from the buffer branch): chunks that never
//! move once handed out. Enough for the reactor to build and run.
#![allow(missing_docs, clippy::mut_from_ref, dead_code)]
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io;

pub const MAX_MALLOC: usize = 8 << 20;

struct Chunk {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

#[derive(Default)]
struct Inner {
    chunks: VecDeque<Chunk>, // readable
    consumed: Vec<Box<[u8]>>,
    len: usize,
    unflushed: Vec<Chunk>,
    ulen: usize,
    booked: Option<Box<[u8]>>,
}

#[derive(Default)]
pub struct LinkBuffer {
    inner: UnsafeCell<Inner>,
}

// SAFETY: placeholder; owned data only.
unsafe impl Send for LinkBuffer {}

impl std::fmt::Debug for LinkBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkBuffer({})", self.len())
    }
}

fn eof(n: usize, len: usize) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("need {n} bytes, have {len}"))
}

impl LinkBuffer {
    pub fn new() -> LinkBuffer {
        LinkBuffer::default()
    }
    fn i(&self) -> &mut Inner {
        // SAFETY: placeholder, single-threaded use.
        unsafe { &mut *self.inner.get() }
    }
    pub fn len(&self) -> usize {
        self.i().len
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn take(&self, n: usize, consume: bool) -> io::Result<&[u8]> {
        let i = self.i();
        if n > i.len {
            return Err(eof(n, i.len));
        }
        if n == 0 {
            return Ok(&[]);
        }
        let f = i.chunks.front_mut().unwrap();
        if f.end - f.start >= n {
            let p = &f.data[f.start..f.start + n] as *const [u8];
            if consume {
                f.start += n;
                i.len -= n;
                if f.start == f.end {
                    let c = i.chunks.pop_front().unwrap();
                    i.consumed.push(c.data);
                }
            }
            // SAFETY: chunk memory is boxed and kept until release.
            return Ok(unsafe { &*p });
        }
        let mut v = Vec::with_capacity(n);
        for c in i.chunks.iter() {
            let k = (n - v.len()).min(c.end - c.start);
            v.extend_from_slice(&c.data[c.start..c.start + k]);
            if v.len() == n {
                break;
            }
        }
        if consume {
            self.skip(n)?;
        }
        let b = v.into_boxed_slice();
        let p = &*b as *const [u8];
        self.i().consumed.push(b);
        // SAFETY: kept until release.
        Ok(unsafe { &*p })
    }
    pub fn next(&self, n: usize) -> io::Result<&[u8]> {
        self.take(n, true)
    }
    pub fn peek(&self, n: usize) -> io::Result<&[u8]> {
        self.take(n, false)
    }
    pub fn skip(&self, mut n: usize) -> io::Result<()> {
        let i = self.i();
        if n > i.len {
            return Err(eof(n, i.len));
        }
        i.len -= n;
        while n > 0 {
            let f = i.chunks.front_mut().unwrap();
            let k = n.min(f.end - f.start);
            f.start += k;
            n -= k;
            if f.start == f.end {
                let c = i.chunks.pop_front().unwrap();
                i.consumed.push(c.data);
            }
        }
        Ok(())
    }
    pub fn until(&self, d: u8) -> io::Result<&[u8]> {
        let all = self.peek(self.len())?;
        match all.iter().position(|&b| b == d) {
            Some(p) => self.next(p + 1),
            None => Err(eof(0, self.len())),
        }
    }
    pub fn read_binary(&self, n: usize) -> io::Result<Vec<u8>> {
        Ok(self.next(n)?.to_vec())
    }
    pub fn read_string(&self, n: usize) -> io::Result<String> {
        String::from_utf8(self.read_binary(n)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    pub fn read_byte(&self) -> io::Result<u8> {
        Ok(self.next(1)?[0])
    }
    pub fn slice(&self, n: usize) -> io::Result<LinkBuffer> {
        let v = self.read_binary(n)?;
        let b = LinkBuffer::new();
        b.write_binary(&v)?;
        b.flush();
        Ok(b)
    }
    pub fn release(&mut self) {
        self.i().consumed.clear();
        if self.i().chunks.is_empty() {
            self.i().chunks = VecDeque::new();
        }
    }
    pub fn malloc(&self, n: usize) -> io::Result<&mut [u8]> {
        if n > MAX_MALLOC {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "malloc too big"));
        }
        let i = self.i();
        i.unflushed.push(Chunk { data: vec![0u8; n].into_boxed_slice(), start: 0, end: n });
        i.ulen += n;
        let c = i.unflushed.last_mut().unwrap();
        let p = &mut c.data[..] as *mut [u8];
        // SAFETY: boxed, never moved.
        Ok(unsafe { &mut *p })
    }
    pub fn malloc_len(&self) -> usize {
        self.i().ulen
    }
    pub fn malloc_ack(&self, n: usize) -> io::Result<()> {
        let i = self.i();
        let mut left = n;
        for c in i.unflushed.iter_mut() {
            let k = left.min(c.end - c.start);
            c.end = c.start + k;
            left -= k;
        }
        i.ulen = n.min(i.ulen);
        Ok(())
    }
    pub fn write_binary(&self, b: &[u8]) -> io::Result<()> {
        let i = self.i();
        i.unflushed.push(Chunk { data: b.to_vec().into_boxed_slice(), start: 0, end: b.len() });
        i.ulen += b.len();
        Ok(())
    }
    pub fn write_string(&self, s: &str) -> io::Result<()> {
        self.write_binary(s.as_bytes())
    }
    pub fn write_byte(&self, b: u8) -> io::Result<()> {
        self.write_binary(&[b])
    }
    pub fn write_direct<B: AsRef<[u8]> + Send + 'static>(&self, data: B) -> io::Result<()> {
        self.write_binary(data.as_ref())
    }
    pub fn append(&self, other: LinkBuffer) -> io::Result<()> {
        other.flush();
        let v = other.read_binary(other.len())?;
        self.write_binary(&v)
    }
    pub fn flush(&self) {
        let i = self.i();
        for c in i.unflushed.drain(..) {
            if c.end > c.start {
                i.len += c.end - c.start;
                i.chunks.push_back(c);
            }
        }
        i.ulen = 0;
    }
    pub fn book(&self, min: usize, max: usize) -> &mut [u8] {
        let _ = min;
        let i = self.i();
        i.booked = Some(vec![0u8; max].into_boxed_slice());
        let p = &mut i.booked.as_mut().unwrap()[..] as *mut [u8];
        // SAFETY: boxed until book_ack.
        unsafe { &mut *p }
    }
    pub fn book_ack(&self, n: usize) {
        let i = self.i();
        if let Some(b) = i.booked.take() {
            i.len += n;
            i.chunks.push_back(Chunk { data: b, start: 0, end: n });
        }
    }
    pub fn io_slices<'a>(&'a self, out: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut k = 0;
        for c in self.i().chunks.iter() {
            if k == out.len() {
                break;
            }
            // SAFETY: placeholder.
            let s: &'a [u8] = unsafe { &*(&c.data[c.start..c.end] as *const [u8]) };
            out[k] = std::io::IoSlice::new(s);
            k += 1;
        }
        k
    }
}
