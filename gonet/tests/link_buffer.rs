//! Focused tests of `reactor::LinkBuffer`: block reuse through the per-thread pools, slices
//! that outlive their parent on another thread, 1 GiB streamed in bounded memory, zero-copy
//! reads, caller data freed by its last holder, and the error of every bad request. The random
//! operation sequences are in link_buffer_model.rs.

use std::io::{ErrorKind, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gonet::reactor::{buffer_stats, LinkBuffer, MAX_MALLOC, MIN_BLOCK};

/// Runs `f` on a fresh thread, whose block pool starts empty and whose counters start at 0.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

fn ready(data: &[u8]) -> LinkBuffer {
    let mut b = LinkBuffer::new();
    b.write_binary(data).unwrap();
    b.flush();
    b
}

#[test]
fn blocks_come_back_through_the_pool() {
    on_fresh_thread(|| {
        let mut b = LinkBuffer::new();
        let rounds = if cfg!(miri) { 100 } else { 10_000 };
        for i in 0..rounds {
            let n = b.fill(64, 4096, |buf| {
                buf[..64].fill(i as u8);
                Ok(64)
            });
            assert_eq!(n.unwrap(), 64);
            assert_eq!(b.next(64).unwrap(), &[i as u8; 64][..]);
            b.release();
            // An emptied, released buffer holds no block: it is back in this thread's pool.
            assert_eq!(buffer_stats().pooled_here, 1);
        }
        let s = buffer_stats();
        assert_eq!(s.allocated_here, 1, "one block allocated, then reused: {s:?}");
        assert_eq!(s.reused_here, rounds as u64 - 1, "{s:?}");
    });
}

/// Blocks the buffers of this thread hold: allocated here and not waiting in the pool (for a
/// thread whose blocks neither leave it nor go back to the allocator).
fn held() -> u64 {
    let s = buffer_stats();
    s.allocated_here - s.pooled_here as u64
}

#[test]
fn an_idle_buffer_holds_no_block() {
    on_fresh_thread(|| {
        let mut b = LinkBuffer::new();
        // A read that found nothing gives its block back at once.
        let r = b.fill(1, 8192, |_| Err(ErrorKind::WouldBlock.into()));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(held(), 0, "fill kept a block for an error");
        assert_eq!(b.fill(1, 8192, |_| Ok(0)).unwrap(), 0);
        assert_eq!(held(), 0, "fill kept a block for nothing");
        // So does book + book_ack(0).
        b.book(1, 8192);
        assert_eq!(held(), 1);
        b.book_ack(0);
        assert_eq!(held(), 0, "book_ack(0) kept a block");
        // And a consumed buffer after release.
        b.write_binary(&[7; 100]).unwrap();
        b.flush();
        assert_eq!(held(), 1);
        b.skip(100).unwrap();
        b.release();
        assert_eq!(held(), 0, "release kept a block");
        // What an idle buffer costs: the struct, and no heap block.
        assert!(std::mem::size_of::<LinkBuffer>() <= 128);
    });
}

#[test]
fn a_slice_outlives_its_parent_and_moves_to_another_thread() {
    let data: Vec<u8> = (0..3 * MIN_BLOCK + 123).map(|i| (i * 7 % 251) as u8).collect();
    let (slice, rest) = on_fresh_thread({
        let data = data.clone();
        move || {
            let mut b = LinkBuffer::new();
            for chunk in data.chunks(MIN_BLOCK) {
                b.write_binary(chunk).unwrap(); // a block each
            }
            b.flush();
            b.skip(5).unwrap();
            let s = b.slice(data.len() - 10).unwrap(); // spans four blocks
            let rest = b.read_binary(5).unwrap();
            drop(b); // the slice keeps the shared blocks alive
            (s, rest)
        }
    });
    assert_eq!(rest, &data[data.len() - 5..]);
    // The creating thread has exited; the slice is read and freed here, so the blocks go to
    // this thread's pool (a fresh one).
    on_fresh_thread(move || {
        let before = buffer_stats().pooled_here;
        assert_eq!(before, 0);
        assert_eq!(slice.len(), data.len() - 10);
        assert_eq!(slice.read_binary(slice.len()).unwrap(), &data[5..data.len() - 5]);
        drop(slice);
        assert_eq!(buffer_stats().pooled_here, 4, "the slice's blocks were not freed here");
    });
}

#[test]
fn a_parent_appends_while_its_slice_is_read_on_another_thread() {
    // The slice and the parent share the parent's tail block: the parent writes past the
    // slice's bytes while another thread reads them.
    let b = ready(&[1; 100]);
    let s = b.slice(100).unwrap();
    let reader = std::thread::spawn(move || {
        for _ in 0..if cfg!(miri) { 10 } else { 1000 } {
            assert_eq!(s.peek(100).unwrap(), &[1; 100][..]);
        }
        s
    });
    for i in 0..3000u32 {
        b.write_byte(i as u8).unwrap();
    }
    let s = reader.join().unwrap();
    assert_eq!(s.read_binary(100).unwrap(), vec![1; 100]);
    let mut b = b;
    b.flush();
    let got = b.read_binary(3000).unwrap();
    assert!(got.iter().enumerate().all(|(i, &x)| x == i as u8));
}

/// The 1 GiB stream repeats a random table whose (prime) length no block size divides.
const PERIOD: usize = 65521;

fn table() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut t: Vec<u8> = (0..PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    t.extend_from_within(..); // twice, so any run of up to PERIOD bytes is contiguous
    t
}

/// Checks (or writes) stream bytes `at..at + buf.len()` against the table, in runs.
fn stream_bytes(table: &[u8], at: u64, len: usize, mut f: impl FnMut(usize, &[u8])) {
    let mut done = 0;
    while done < len {
        let off = ((at + done as u64) % PERIOD as u64) as usize;
        let k = (len - done).min(PERIOD);
        f(done, &table[off..off + k]);
        done += k;
    }
}

#[test]
#[cfg_attr(miri, ignore = "1 GiB is too slow under Miri")]
fn one_gib_streams_through_book_next_release_in_bounded_memory() {
    on_fresh_thread(|| {
        const TOTAL: u64 = 1 << 30;
        const BACKLOG: usize = 1 << 20;
        let table = table();
        let mut b = LinkBuffer::new();
        let (mut produced, mut consumed) = (0u64, 0u64);
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut rand = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut max_held = 0;
        while consumed < TOTAL {
            // Produce up to 64 KiB in book/book_ack rounds (at most a block each), keeping
            // at most ~1 MiB readable.
            let mut want = (rand(65536) + 1).min(TOTAL - produced) as usize;
            while want > 0 && b.len() < BACKLOG {
                let buf = b.book(1, want);
                let k = buf.len();
                stream_bytes(&table, produced, k, |i, src| {
                    buf[i..i + src.len()].copy_from_slice(src)
                });
                b.book_ack(k);
                produced += k as u64;
                want -= k;
            }
            // Consume a random amount in a few reads, often across blocks.
            for _ in 0..rand(8) + 1 {
                if b.is_empty() {
                    break;
                }
                let n = (rand(20_000) as usize + 1).min(b.len());
                let s = b.next(n).unwrap();
                stream_bytes(&table, consumed, n, |i, want| {
                    assert!(s[i..i + want.len()] == *want, "bytes {}.. differ", consumed + i as u64)
                });
                consumed += n as u64;
            }
            max_held = max_held.max(held());
            b.release();
        }
        assert_eq!(produced, TOTAL);
        // Memory stayed bounded: the blocks of the ~1 MiB backlog (8 KiB each) plus scratch
        // copies, and blocks were reused, not allocated, as 1 GiB went through.
        let s = buffer_stats();
        eprintln!("1 GiB: held at most {max_held} blocks; {s:?}");
        assert!(max_held <= 150, "held up to {max_held} blocks: {s:?}");
        assert!(s.allocated_here <= 150, "{s:?}");
        assert!(s.reused_here > 100_000, "{s:?}");
    });
}

#[test]
fn next_is_zero_copy_within_a_block_and_copies_across_blocks() {
    let mut b = LinkBuffer::new();
    b.write_binary(&[1; MIN_BLOCK]).unwrap();
    b.write_binary(&[2; 100]).unwrap();
    b.flush();
    let mut iov = [IoSlice::new(&[]); 4];
    assert_eq!(b.io_slices(&mut iov), 2);
    let (p0, p1) = (iov[0].as_ptr(), iov[1].as_ptr());
    assert_eq!(iov[0].len(), MIN_BLOCK);
    assert_eq!(iov[1].len(), 100);
    let a = b.next(MIN_BLOCK - 10).unwrap();
    assert_eq!(a.as_ptr(), p0, "within one block: the bytes in place");
    let c = b.peek(20).unwrap();
    assert!(c.as_ptr() != p0 && c.as_ptr() != p1, "across blocks: a copy");
    assert_eq!(c, &[[1; 10], [2; 10]].concat()[..]);
    let d = b.next(20).unwrap();
    assert_eq!(d, c);
    let e = b.next(90).unwrap();
    assert_eq!(e.as_ptr(), p1.wrapping_add(10));
    // Every slice is still intact before release.
    assert_eq!(a, &[1; MIN_BLOCK - 10][..]);
    assert_eq!(c, d);
    b.release();
    assert!(b.is_empty());
}

#[test]
fn appends_never_move_readable_or_handed_out_bytes() {
    let b = ready(b"hello");
    let h = b.peek(5).unwrap();
    let w = b.malloc(3).unwrap();
    let booked = b.book(10, 10);
    for i in 0..if cfg!(miri) { 2_000 } else { 10_000u32 } {
        b.write_binary(&i.to_le_bytes()).unwrap();
    }
    w.copy_from_slice(b"abc");
    booked.fill(9);
    assert_eq!(h, b"hello");
    let mut b = b;
    b.flush();
    assert_eq!(b.read_binary(8).unwrap(), b"helloabc");
    assert_eq!(b.read_binary(4).unwrap(), 0u32.to_le_bytes());
}

struct Payload(Vec<u8>, Arc<AtomicUsize>);

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn write_direct_data_is_dropped_by_its_last_holder() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut b = LinkBuffer::new();
    b.write_direct(Payload(vec![9; 10_000], drops.clone())).unwrap();
    b.flush();
    let s = b.slice(6000).unwrap();
    let before = buffer_stats().allocated_here;
    assert_eq!(b.next(4000).unwrap(), &[9; 4000][..], "zero-copy into the caller's data");
    assert_eq!(buffer_stats().allocated_here, before);
    b.release();
    drop(b);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the slice still holds the data");
    let s = std::thread::spawn(move || s.read_binary(6000).unwrap()).join().unwrap();
    assert_eq!(s, vec![9; 6000]);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // Data that lives inside the value itself (an array) stays put too.
    let mut arr = LinkBuffer::new();
    arr.write_direct([3u8; 4096]).unwrap();
    arr.flush();
    let t = arr.slice(4096).unwrap();
    drop(arr);
    assert_eq!(t.next(4096).unwrap(), &[3u8; 4096][..]);
    // Small data is copied (and so dropped at once).
    let small = LinkBuffer::new();
    small.write_direct(Payload(vec![1; 10], drops.clone())).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(small.malloc_len(), 10);
}

#[test]
fn append_moves_blocks_without_copying() {
    let a = ready(b"abc");
    let other = ready(&[5; 5000]);
    let mut iov = [IoSlice::new(&[]); 4];
    let p = {
        other.io_slices(&mut iov);
        iov[0].as_ptr()
    };
    other.write_binary(b"tail").unwrap(); // unflushed in `other`
    a.append(other).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a.malloc_len(), 5004);
    let mut a = a;
    a.flush();
    a.skip(3).unwrap();
    assert_eq!(a.next(100).unwrap().as_ptr(), p, "appended bytes were not copied");
    a.skip(4900).unwrap();
    assert_eq!(a.read_string(4).unwrap(), "tail");
}

fn kind<T: std::fmt::Debug>(r: std::io::Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.to_string())
}

#[test]
fn bad_requests_give_clear_errors_and_consume_nothing() {
    let mut b = ready(b"abc\xffdef");
    let eof = ErrorKind::UnexpectedEof;
    let (k, m) = kind(b.next(8));
    assert_eq!(k, eof);
    assert!(m.contains("next(8)") && m.contains("only 7"), "{m}");
    assert_eq!(kind(b.peek(8)).0, eof);
    assert_eq!(kind(b.skip(8)).0, eof);
    assert_eq!(kind(b.read_binary(8)).0, eof);
    assert_eq!(kind(b.read_string(8)).0, eof);
    assert_eq!(kind(b.slice(8).map(|_| ())).0, eof);
    let (k, m) = kind(b.until(b'z'));
    assert_eq!(k, eof);
    assert!(m.contains("until(0x7a)"), "{m}");
    let (k, m) = kind(b.read_string(5));
    assert_eq!(k, ErrorKind::InvalidData);
    assert!(m.contains("read_string(5)"), "{m}");
    assert_eq!(b.len(), 7, "nothing consumed by a failed read");
    assert_eq!(b.read_string(3).unwrap(), "abc");
    let (k, m) = kind(b.malloc(MAX_MALLOC + 1));
    assert_eq!(k, ErrorKind::InvalidInput);
    assert!(m.contains("MAX_MALLOC"), "{m}");
    assert_eq!(b.malloc(MAX_MALLOC).unwrap().len(), MAX_MALLOC);
    assert_eq!(kind(b.malloc_ack(MAX_MALLOC + 1)).0, ErrorKind::InvalidInput);
    b.malloc_ack(0).unwrap();
    let (k, m) = kind(b.fill(1, 16, |buf| Ok(buf.len() + 1)));
    assert_eq!(k, ErrorKind::InvalidData);
    assert!(m.contains("fill"), "{m}");
    assert_eq!(b.len(), 4, "a lying reader appended nothing");
    b.book_ack(5); // no booking: nothing happens
    assert_eq!(b.len(), 4);
    let mut empty = LinkBuffer::new();
    assert_eq!(kind(empty.read_byte()).0, eof);
    assert_eq!(empty.next(0).unwrap(), b"");
    empty.release();
}
