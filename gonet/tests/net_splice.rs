//! Zero-copy copies: `net::copy` (splice through a pipe) moves 1 GiB between sockets with
//! every byte checked, honours the source's read deadline and close, keeps bytes across a
//! deadline with a `Splicer`, works for Unix sockets, and `copy_file` sends a file.

mod net_util;

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{copy, copy_file, is_closed, Splicer, UnixStream};
use net_util::*;

const BLOCK: usize = 64 * 1024;

/// Writes `blocks` pattern blocks to `w`.
fn produce(mut w: impl Write, blocks: u64) {
    let mut buf = vec![0u8; BLOCK];
    for k in 0..blocks {
        pattern_block(k, &mut buf);
        w.write_all(&buf).unwrap();
    }
}

/// Reads `blocks` pattern blocks from `r` and checks every byte; then expects end of stream.
fn consume(mut r: impl Read, blocks: u64) {
    let mut got = vec![0u8; BLOCK];
    let mut want = vec![0u8; BLOCK];
    for k in 0..blocks {
        r.read_exact(&mut got).unwrap_or_else(|e| panic!("block {k}: {e}"));
        pattern_block(k, &mut want);
        assert!(got == want, "block {k} differs");
    }
    let mut b = [0u8; 1];
    assert_eq!(r.read(&mut b).unwrap(), 0, "bytes after the last block");
}

/// 1 GiB from one TCP connection into another through `copy`, every byte checked, and the
/// copy ends at the source's end of stream with the exact count.
#[test]
fn copy_moves_one_gib_intact() {
    run(2, Duration::from_secs(120), || {
        const BLOCKS: u64 = (1 << 30) / BLOCK as u64;
        let (src_w, src_r) = tcp_pair();
        let (dst_w, dst_r) = tcp_pair();
        let p = gonet::go(move || {
            produce(&src_w, BLOCKS);
            hang_up(&src_w);
        });
        let c = gonet::go(move || consume(&dst_r, BLOCKS));
        let n = copy(&dst_w, &src_r).unwrap();
        assert_eq!(n, BLOCKS * BLOCK as u64);
        hang_up(&dst_w);
        p.join().unwrap();
        c.join().unwrap();
    });
}

/// A read deadline fires mid-copy: the copy fails with `TimedOut`, every byte moved so far has
/// arrived, and after the deadline is moved the same `Splicer` carries on.
#[test]
fn read_deadline_fires_mid_copy() {
    run(2, LIMIT, || {
        let (src_w, src_r) = tcp_pair();
        let (dst_w, dst_r) = tcp_pair();
        let first = 3 * BLOCK as u64 + 100;
        let mut data = vec![0u8; 8 * BLOCK];
        pattern_block(7, &mut data);
        let data = Arc::new(data);
        let d2 = data.clone();
        // The producer sends a part, pauses well past the deadline, then sends the rest.
        let p = gonet::go(move || {
            (&src_w).write_all(&d2[..first as usize]).unwrap();
            gonet::time::sleep(ms(600));
            (&src_w).write_all(&d2[first as usize..]).unwrap();
            hang_up(&src_w);
        });
        src_r.set_read_deadline(Some(Instant::now() + ms(200))).unwrap();
        let mut sp = Splicer::new().unwrap();
        let mut moved = 0u64;
        let t = Instant::now();
        let err = loop {
            match sp.copy_chunk(&dst_w, &src_r) {
                Ok(0) => panic!("end of stream before the deadline"),
                Ok(n) => moved += n as u64,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(moved, first);
        assert!(t.elapsed() >= ms(190) && t.elapsed() < Duration::from_secs(5));
        let mut got = vec![0u8; first as usize];
        (&dst_r).read_exact(&mut got).unwrap();
        assert!(got[..] == data[..first as usize]);
        // Move the deadline: the rest comes through the same pipe.
        src_r.set_read_deadline(None).unwrap();
        let rest = sp.copy(&dst_w, &src_r).unwrap();
        assert_eq!(first + rest, data.len() as u64);
        hang_up(&dst_w);
        let mut tail = Vec::new();
        (&dst_r).read_to_end(&mut tail).unwrap();
        assert!(tail[..] == data[first as usize..]);
        p.join().unwrap();
    });
}

/// Closing the source from another goroutine ends a blocked copy with a "closed" error.
#[test]
fn close_ends_a_blocked_copy() {
    run(2, LIMIT, || {
        let (_src_w, src_r) = tcp_pair();
        let (dst_w, _dst_r) = tcp_pair();
        let src_r = Arc::new(src_r);
        let s2 = src_r.clone();
        let closer = gonet::go(move || {
            gonet::time::sleep(ms(100));
            s2.close().unwrap();
        });
        let e = copy(&dst_w, &*src_r).unwrap_err();
        assert!(is_closed(&e), "{e}");
        closer.join().unwrap();
    });
}

/// Unix stream sockets splice too, in both roles.
#[test]
fn copy_between_unix_and_tcp() {
    run(2, LIMIT, || {
        const BLOCKS: u64 = 64;
        let (uw, ur) = UnixStream::pair().unwrap();
        let (tw, tr) = tcp_pair();
        let p = gonet::go(move || {
            produce(&uw, BLOCKS);
            uw.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let c = gonet::go(move || consume(&tr, BLOCKS));
        assert_eq!(copy(&tw, &ur).unwrap(), BLOCKS * BLOCK as u64);
        hang_up(&tw);
        p.join().unwrap();
        c.join().unwrap();

        let (uw, ur) = UnixStream::pair().unwrap();
        let (tw, tr) = tcp_pair();
        let p = gonet::go(move || {
            produce(&tw, BLOCKS);
            hang_up(&tw);
        });
        let c = gonet::go(move || consume(&ur, BLOCKS));
        assert_eq!(copy(&uw, &tr).unwrap(), BLOCKS * BLOCK as u64);
        uw.shutdown(std::net::Shutdown::Write).unwrap();
        p.join().unwrap();
        c.join().unwrap();
    });
}

/// `copy_file` sends a file from its current offset to its end with sendfile.
#[test]
fn copy_file_sends_the_rest_of_a_file() {
    run(2, LIMIT, || {
        let dir = TempDir::new("sendfile");
        let path = dir.join("data.bin");
        let mut data = vec![0u8; 40 * BLOCK];
        pattern_block(3, &mut data);
        data.extend_from_slice(b"odd tail");
        std::fs::write(&path, &data).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        f.seek(SeekFrom::Start(1000)).unwrap();
        let (w, r) = tcp_pair();
        let reader = gonet::go(move || {
            let mut got = Vec::new();
            (&r).read_to_end(&mut got).unwrap();
            got
        });
        let n = copy_file(&w, &f).unwrap();
        assert_eq!(n, data.len() as u64 - 1000);
        assert_eq!(f.stream_position().unwrap(), data.len() as u64);
        hang_up(&w);
        let got = reader.join().unwrap();
        assert!(got[..] == data[1000..]);
    });
}
