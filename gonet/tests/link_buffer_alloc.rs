//! `LinkBuffer` in steady state allocates nothing: an echo round (read into the input buffer,
//! parse, answer through the output buffer, send, release both) is counted with a counting
//! global allocator after a warm-up that fills the block pool and the node queues.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::IoSlice;

use gonet::reactor::LinkBuffer;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialized thread-local
// without a destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// One request/response round, as a reactor connection runs it.
fn round(input: &mut LinkBuffer, output: &mut LinkBuffer, i: usize) {
    let req = [b'a' + (i % 26) as u8; 60];
    // The poller reads a request (two of them every other round, one split across reads).
    let n = input
        .fill(1, 65536, |buf| {
            buf[..60].copy_from_slice(&req);
            buf[60..64].copy_from_slice(b"\r\n\r\n");
            Ok(64)
        })
        .unwrap();
    assert_eq!(n, 64);
    if i % 2 == 0 {
        let b = input.book(1, 65536);
        b[..10].copy_from_slice(b"0123456789");
        input.book_ack(10);
    }
    // The handler parses and answers.
    assert_eq!(input.peek(1).unwrap()[0], req[0]);
    let head = input.until(b'\r').unwrap();
    assert_eq!(head.len(), 61);
    input.skip(3).unwrap();
    let w = output.malloc(64).unwrap();
    w[..61].copy_from_slice(head);
    w[61..].copy_from_slice(b"\n\r\n");
    output.write_binary(b"+OK\r\n").unwrap();
    output.write_byte(b'\n').unwrap();
    if i % 2 == 0 {
        assert_eq!(input.next(10).unwrap(), b"0123456789");
        assert!(input.is_empty());
    }
    output.flush();
    // The sender: one sendmsg over the output blocks.
    let mut iov = [IoSlice::new(&[]); 8];
    let cnt = output.io_slices(&mut iov);
    let sent: usize = iov[..cnt].iter().map(|s| s.len()).sum();
    assert_eq!(sent, 70);
    output.skip(sent).unwrap();
    output.release();
    input.release();
}

#[test]
fn an_echo_round_allocates_nothing_in_steady_state() {
    std::thread::spawn(|| {
        let (mut input, mut output) = (LinkBuffer::new(), LinkBuffer::new());
        for i in 0..100 {
            round(&mut input, &mut output, i);
        }
        let before = allocs();
        for i in 0..if cfg!(miri) { 100 } else { 10_000 } {
            round(&mut input, &mut output, i);
        }
        assert_eq!(allocs() - before, 0, "allocations in steady-state rounds");
        // The counter does count (so the zero above means something).
        let v = vec![1u8; 10];
        assert!(allocs() > before && v.len() == 10);
    })
    .join()
    .unwrap();
}
