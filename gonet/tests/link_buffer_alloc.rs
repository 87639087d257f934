//! `LinkBuffer` in steady state allocates nothing: an echo round (read into the input buffer,
//! parse, answer through the output buffer, send, release both) is counted with a counting
//! global allocator after a warm-up that fills the block pool and the node queues.

mod alloc_count;

use std::io::IoSlice;

use alloc_count::allocs;
use gonet::reactor::LinkBuffer;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

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
    send(output, 70);
    input.release();
}

/// The sender: one sendmsg over the output blocks (`want` bytes), then the output released.
fn send(output: &mut LinkBuffer, want: usize) {
    let mut iov = [IoSlice::new(&[]); 8];
    let cnt = output.io_slices(&mut iov);
    let sent: usize = iov[..cnt].iter().map(|s| s.len()).sum();
    assert_eq!(sent, want);
    output.skip(sent).unwrap();
    output.release();
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
        let v = std::hint::black_box(Vec::<u8>::with_capacity(10));
        assert!(allocs() > before && v.capacity() >= 10);
    })
    .join()
    .unwrap();
}

/// The echo and proxy shape: the handler moves what arrived to the output with
/// `slice` + `append` (blocks shared, nothing copied), then the sender sends and releases.
fn slice_round(input: &mut LinkBuffer, output: &mut LinkBuffer, i: usize) {
    let n = input
        .fill(1, 65536, |buf| {
            buf[..64].fill(b'a' + (i % 26) as u8);
            Ok(64)
        })
        .unwrap();
    assert_eq!(n, 64);
    let s = input.slice(input.len()).unwrap();
    output.append(s).unwrap();
    input.release();
    output.flush();
    send(output, 64);
}

#[test]
fn a_slice_and_append_round_allocates_nothing_in_steady_state() {
    std::thread::spawn(|| {
        let (mut input, mut output) = (LinkBuffer::new(), LinkBuffer::new());
        for i in 0..100 {
            slice_round(&mut input, &mut output, i);
        }
        let before = allocs();
        for i in 0..if cfg!(miri) { 100 } else { 10_000 } {
            slice_round(&mut input, &mut output, i);
        }
        assert_eq!(allocs() - before, 0, "allocations in steady-state slice+append rounds");
    })
    .join()
    .unwrap();
}

/// The same round on plain `Vec`s (copying in and out), the baseline for the figure below.
fn vec_round(input: &mut Vec<u8>, output: &mut Vec<u8>, sink: &mut [u8], i: usize) {
    let req = [b'a' + (i % 26) as u8; 60];
    input.extend_from_slice(&req);
    input.extend_from_slice(b"\r\n\r\n");
    if i % 2 == 0 {
        input.extend_from_slice(b"0123456789");
    }
    let end = input.iter().position(|&b| b == b'\r').unwrap() + 1;
    output.extend_from_slice(&input[..end]);
    output.extend_from_slice(b"\n\r\n+OK\r\n\n");
    input.drain(..end + 3);
    if i % 2 == 0 {
        assert_eq!(&input[..10], b"0123456789");
        input.drain(..10);
    }
    let n = output.len();
    sink[..n].copy_from_slice(output);
    output.clear();
}

/// CPU time of this thread (other processes on a loaded machine do not count).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU nanoseconds per echo round: median of 9 trials of 200,000 rounds, for `LinkBuffer` and
/// for the `Vec` baseline. A figure, not an assertion (run with `--run-ignored only`).
#[test]
#[ignore = "timing figure"]
fn echo_round_cost() {
    let trial = |f: &mut dyn FnMut(usize)| {
        let mut t: Vec<f64> = (0..9)
            .map(|_| {
                let start = thread_cpu_ns();
                for i in 0..200_000 {
                    f(i);
                }
                (thread_cpu_ns() - start) as f64 / 200_000.0
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[4]
    };
    let (mut input, mut output) = (LinkBuffer::new(), LinkBuffer::new());
    let lb = trial(&mut |i| round(&mut input, &mut output, i));
    let (mut vin, mut vout, mut sink) = (Vec::new(), Vec::new(), vec![0u8; 256]);
    let v = trial(&mut |i| vec_round(&mut vin, &mut vout, &mut sink, i));
    eprintln!("echo round: LinkBuffer {lb:.1} ns, Vec baseline {v:.1} ns, ratio {:.2}", lb / v);
}
