//! The RESP server of `examples/resp_kv.rs` on the reactor (`--reactor`): commands, pipelining
//! across reads, a command split over many packets, protocol errors, QUIT.

mod common;

#[path = "../../examples/resp_kv.rs"]
#[allow(dead_code)]
mod resp_kv;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn start() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            resp_kv::serve_reactor(ln, Arc::new(resp_kv::Store::new(8))).unwrap();
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server started")
}

fn exchange(s: &mut TcpStream, req: &[u8], want: &[u8]) {
    s.write_all(req).unwrap();
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

#[test]
fn resp_on_the_reactor() {
    common::within(Duration::from_secs(60), || {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        exchange(&mut s, b"PING\r\n", b"+PONG\r\n");
        exchange(&mut s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", b"+OK\r\n");
        exchange(&mut s, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$5\r\nhello\r\n");
        // 100 pipelined INCRs in one write.
        let req = b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n".repeat(100);
        let want: Vec<u8> = (1..=100).flat_map(|i| format!(":{i}\r\n").into_bytes()).collect();
        exchange(&mut s, &req, &want);
        // A 1 MB value arriving in pieces.
        let v = vec![b'x'; 1 << 20];
        let mut req = format!("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n${}\r\n", v.len()).into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(b"\r\n");
        for piece in req.chunks(100_000) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut ok = [0u8; 5];
        s.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        exchange(&mut s, b"*2\r\n$6\r\nEXISTS\r\n$1\r\nb\r\n", b":1\r\n");
        exchange(&mut s, b"QUIT\r\n", b"+OK\r\n");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
        // A protocol error gets its reply and a close.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"*1\r\n$x\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(String::from_utf8_lossy(&rest).starts_with("-ERR Protocol error"), "{rest:?}");
    });
}
