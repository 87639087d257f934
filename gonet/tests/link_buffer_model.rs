//! Model-based test of `reactor::LinkBuffer`: thousands of random operation sequences, each
//! checked against a `VecDeque<u8>` (readable bytes) plus a `Vec<u8>` (unflushed bytes).
//!
//! Each sequence runs in epochs: an epoch is a run of `&self` operations that keep every slice
//! they got (`next`, `peek`, `until`, `io_slices`) and every writable range (`malloc`, `book`)
//! alive to its end, where each kept slice is checked unchanged and each writable range is
//! written late (so appends made meanwhile must not have moved or reused their bytes); then one
//! `&mut self` operation (`release`, `flush`, `malloc_ack`, `book_ack`). Buffers made by `slice`
//! are kept across epochs, checked later, appended back or dropped.
//!
//! `LB_SEED=<u64>` replays one sequence; `LB_CASES=<n>` sets how many run.

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice, Read};

use gonet::reactor::{LinkBuffer, MAX_MALLOC};

/// splitmix64: small, seedable, good enough to drive a test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// A length: mostly small, sometimes spanning blocks.
    fn size(&mut self) -> usize {
        match self.below(20) {
            0 => self.below(40_000),
            1..=3 => self.below(5_000),
            _ => self.below(64),
        }
    }
    /// Bytes from a small alphabet (so `until` finds delimiters), rarely not UTF-8.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let bad = self.chance(10);
        (0..n)
            .map(|_| if bad && self.chance(5) { 0xff } else { b'a' + self.below(12) as u8 })
            .collect()
    }
}

#[derive(Default, Clone)]
struct Model {
    readable: VecDeque<u8>,
    unflushed: Vec<u8>,
    /// Content written into the last `book` range, while it is outstanding.
    booking: Option<Vec<u8>>,
}

impl Model {
    fn take(&mut self, n: usize) -> Vec<u8> {
        self.readable.drain(..n).collect()
    }
    fn front(&self, n: usize) -> Vec<u8> {
        self.readable.iter().take(n).copied().collect()
    }
    fn check(&self, lb: &LinkBuffer) {
        assert_eq!(lb.len(), self.readable.len(), "len");
        assert_eq!(lb.is_empty(), self.readable.is_empty());
        assert_eq!(lb.malloc_len(), self.unflushed.len(), "malloc_len");
    }
}

/// A buffer with `readable` flushed bytes then `unflushed` bytes, built by random writes.
fn build(rng: &mut Rng, readable: &[u8], unflushed: &[u8]) -> LinkBuffer {
    let mut b = LinkBuffer::new();
    write_random(rng, &b, readable);
    b.flush();
    write_random(rng, &b, unflushed);
    b
}

/// Appends `data` (unflushed) with a random mix of writer operations.
fn write_random(rng: &mut Rng, b: &LinkBuffer, mut data: &[u8]) {
    while !data.is_empty() {
        let k = (rng.below(data.len()) + 1).min(data.len());
        let (now, rest) = data.split_at(k);
        match rng.below(4) {
            0 => b.write_binary(now).unwrap(),
            1 => b.malloc(k).unwrap().copy_from_slice(now),
            2 => b.write_direct(now.to_vec()).unwrap(),
            _ => now.iter().for_each(|&x| b.write_byte(x).unwrap()),
        }
        data = rest;
    }
}

fn eof<T: std::fmt::Debug>(r: std::io::Result<T>) {
    assert_eq!(r.unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

/// One `&self` operation. Slices it returns go to `held` with their expected content;
/// writable ranges go to `writes` with their offset in `m.unflushed`, written at epoch end.
fn shared_op<'a>(
    rng: &mut Rng,
    lb: &'a LinkBuffer,
    m: &mut Model,
    held: &mut Vec<(&'a [u8], Vec<u8>)>,
    writes: &mut Vec<(&'a mut [u8], usize)>,
    kept: &mut Vec<(LinkBuffer, Vec<u8>)>,
) {
    let len = m.readable.len();
    let n = if rng.chance(80) && len > 0 { rng.below(len + 1) } else { rng.size() };
    match rng.below(22) {
        0 | 1 => {
            if n > len {
                eof(lb.next(n));
            } else {
                let want = m.take(n);
                held.push((lb.next(n).unwrap(), want));
            }
        }
        2 => {
            if n > len {
                eof(lb.peek(n));
            } else {
                held.push((lb.peek(n).unwrap(), m.front(n)));
            }
        }
        3 => {
            if n > len {
                eof(lb.skip(n));
            } else {
                lb.skip(n).unwrap();
                m.take(n);
            }
        }
        4 => {
            let delim = b'a' + rng.below(14) as u8;
            match m.readable.iter().position(|&x| x == delim) {
                Some(i) => {
                    let want = m.take(i + 1);
                    held.push((lb.until(delim).unwrap(), want));
                }
                None => eof(lb.until(delim)),
            }
        }
        5 => {
            if n > len {
                eof(lb.read_binary(n));
            } else {
                assert_eq!(lb.read_binary(n).unwrap(), m.take(n));
            }
        }
        6 => {
            if n > len {
                eof(lb.read_string(n));
            } else {
                let want = m.front(n);
                match String::from_utf8(want) {
                    Ok(s) => {
                        assert_eq!(lb.read_string(n).unwrap(), s);
                        m.take(n);
                    }
                    Err(_) => {
                        let e = lb.read_string(n).unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::InvalidData);
                    }
                }
            }
        }
        7 => match m.readable.pop_front() {
            Some(x) => assert_eq!(lb.read_byte().unwrap(), x),
            None => eof(lb.read_byte()),
        },
        8 | 9 => {
            if n > len {
                eof(lb.slice(n).map(|_| ()));
            } else {
                let s = lb.slice(n).unwrap();
                let want = m.take(n);
                assert_eq!(s.len(), n);
                assert_eq!(s.malloc_len(), 0);
                kept.push((s, want));
            }
        }
        10 => {
            let mut out = vec![IoSlice::new(&[]); rng.below(6) + 1];
            let cnt = lb.io_slices(&mut out);
            let got: Vec<u8> = out[..cnt].iter().flat_map(|s| s.iter().copied()).collect();
            if cnt < out.len() {
                assert_eq!(got.len(), len, "io_slices left bytes out with slots to spare");
            }
            assert!(out[..cnt].iter().all(|s| !s.is_empty()));
            assert_eq!(got, m.front(got.len()));
        }
        11 => {
            let mut buf = vec![0; n];
            let k = (&*lb).read(&mut buf).unwrap();
            assert_eq!(k, n.min(len));
            assert_eq!(buf[..k], m.take(k)[..]);
        }
        12 | 13 => {
            let data = rng.bytes(n);
            match rng.below(4) {
                0 => lb.write_binary(&data).unwrap(),
                1 => lb.write_direct(data.clone()).unwrap(),
                2 => {
                    let s: String = data.iter().map(|&b| (b & 0x7f) as char).collect();
                    lb.write_string(&s).unwrap();
                    m.unflushed.extend_from_slice(s.as_bytes());
                    return;
                }
                _ => data.iter().for_each(|&x| lb.write_byte(x).unwrap()),
            }
            m.unflushed.extend_from_slice(&data);
        }
        14 | 15 => {
            if rng.chance(3) {
                let e = lb.malloc(MAX_MALLOC + 1 + rng.below(10)).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidInput);
                return;
            }
            let w = lb.malloc(n).unwrap();
            assert_eq!(w.len(), n);
            writes.push((w, m.unflushed.len()));
            m.unflushed.resize(m.unflushed.len() + n, 0);
        }
        16 => {
            // Append a fresh buffer or a kept slice.
            let (other, content) = if !kept.is_empty() && rng.chance(50) {
                kept.swap_remove(rng.below(kept.len()))
            } else {
                let (na, nb) = (rng.size(), rng.size());
                let (a, b) = (rng.bytes(na), rng.bytes(nb));
                let o = build(rng, &a, &b);
                if rng.chance(30) {
                    let k = rng.below(a.len() + 1);
                    o.skip(k).unwrap();
                    (o, [&a[k..], &b[..]].concat())
                } else {
                    (o, [a, b].concat())
                }
            };
            lb.append(other).unwrap();
            m.unflushed.extend_from_slice(&content);
        }
        17 => {
            let (min, max) = (rng.size(), rng.size());
            let b = lb.book(min, max);
            assert!(b.len() >= min.clamp(1, MAX_MALLOC) && b.len() <= max.max(min).max(1));
            let data = rng.bytes(b.len());
            b.copy_from_slice(&data);
            m.booking = Some(data);
        }
        18 | 19 => {
            let (min, max) = (rng.size(), rng.size());
            let nn = rng.below(100);
            let nested = rng.chance(10).then(|| rng.bytes(nn));
            let fail = rng.chance(5);
            let mut k = 0;
            let mut wrote = Vec::new();
            let r = lb.fill(min, max, |buf| {
                assert!(buf.len() >= min.clamp(1, MAX_MALLOC));
                if let Some(x) = &nested {
                    lb.write_binary(x).unwrap();
                }
                if fail {
                    return Err(ErrorKind::WouldBlock.into());
                }
                k = rng.below(buf.len() + 1);
                wrote = rng.bytes(k);
                buf[..k].copy_from_slice(&wrote);
                Ok(k)
            });
            if let Some(x) = &nested {
                m.unflushed.extend_from_slice(x);
            }
            if fail {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
            } else {
                assert_eq!(r.unwrap(), k);
                if m.unflushed.is_empty() {
                    m.readable.extend(&wrote);
                } else {
                    m.unflushed.extend_from_slice(&wrote);
                }
            }
        }
        _ => {
            // A kept slice: check part of it (consuming), maybe drop it.
            if kept.is_empty() {
                return;
            }
            let i = rng.below(kept.len());
            let (s, want) = &mut kept[i];
            let k = rng.below(want.len() + 1);
            assert_eq!(s.next(k).unwrap(), &want[..k]);
            want.drain(..k);
            assert_eq!(s.len(), want.len());
            if rng.chance(50) {
                kept.swap_remove(i);
            }
        }
    }
}

/// One `&mut self` operation.
fn mut_op(rng: &mut Rng, lb: &mut LinkBuffer, m: &mut Model) {
    match rng.below(6) {
        0 | 1 => {
            lb.release();
            m.booking = None;
        }
        2 => {
            lb.flush();
            let u: Vec<u8> = std::mem::take(&mut m.unflushed);
            m.readable.extend(u);
        }
        3 => {
            let n = rng.below(m.unflushed.len() + 2);
            if n > m.unflushed.len() {
                assert_eq!(lb.malloc_ack(n).unwrap_err().kind(), ErrorKind::InvalidInput);
            } else {
                lb.malloc_ack(n).unwrap();
                m.unflushed.truncate(n);
                m.booking = None;
            }
        }
        _ => {
            // book_ack of the outstanding booking, or a fresh book + ack.
            let data = match m.booking.take() {
                Some(d) => d,
                None if rng.chance(20) => {
                    lb.book_ack(rng.below(10));
                    return;
                }
                None => {
                    let b = lb.book(rng.size(), rng.size());
                    let d = rng.bytes(b.len());
                    b.copy_from_slice(&d);
                    d
                }
            };
            let n = rng.below(data.len() + 10);
            lb.book_ack(n);
            let n = n.min(data.len());
            let u: Vec<u8> = std::mem::take(&mut m.unflushed);
            m.readable.extend(u);
            m.readable.extend(&data[..n]);
        }
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    let mut lb = LinkBuffer::new();
    let mut m = Model::default();
    let mut kept = Vec::new();
    for _ in 0..rng.below(60) + 1 {
        {
            let mut held = Vec::new();
            let mut writes = Vec::new();
            for _ in 0..rng.below(8) {
                shared_op(&mut rng, &lb, &mut m, &mut held, &mut writes, &mut kept);
                m.check(&lb);
            }
            for (w, at) in writes {
                let d = rng.bytes(w.len());
                w.copy_from_slice(&d);
                m.unflushed[at..at + d.len()].copy_from_slice(&d);
            }
            for (s, want) in &held {
                assert_eq!(*s, &want[..], "a held slice changed (seed {seed})");
            }
        }
        mut_op(&mut rng, &mut lb, &mut m);
        m.check(&lb);
        if rng.chance(10) {
            // Drain everything and compare.
            lb.flush();
            m.readable.extend(std::mem::take(&mut m.unflushed));
            assert_eq!(
                lb.read_binary(lb.len()).unwrap(),
                Vec::from(std::mem::take(&mut m.readable))
            );
        }
    }
    for (s, want) in kept {
        assert_eq!(s.read_binary(s.len()).unwrap(), want, "a kept slice (seed {seed})");
    }
    lb.flush();
    let all: Vec<u8> = m.readable.iter().copied().chain(m.unflushed.iter().copied()).collect();
    assert_eq!(lb.read_binary(lb.len()).unwrap(), all, "final content (seed {seed})");
}

#[test]
fn random_sequences_match_the_model() {
    if let Some(seed) = std::env::var("LB_SEED").ok().and_then(|s| s.parse().ok()) {
        return run(seed);
    }
    let cases: u64 = std::env::var("LB_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    for i in 0..cases {
        let seed = 0x5eed_0000 + i;
        let r = std::panic::catch_unwind(|| run(seed));
        if let Err(e) = r {
            eprintln!("failing seed: LB_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}
