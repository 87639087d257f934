//! Helpers of the reactor test files: a server on its own runtime thread, std clients.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use gonet::reactor::EventLoop;

/// A running `EventLoop` on a runtime of `procs` workers, on its own thread.
pub struct Server {
    pub lp: EventLoop,
    pub addr: SocketAddr,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Server {
    pub fn start(lp: EventLoop, procs: usize) -> Server {
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let lp2 = lp.clone();
        let thread = thread::spawn(move || {
            gonet::Builder::new().procs(procs).build().unwrap().run(move || lp2.serve(ln))
        });
        Server { lp, addr, thread: Some(thread) }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Shuts the loop down (deadline in 5 s) and waits for `serve` to return.
    pub fn stop(mut self) -> io::Result<()> {
        let r = self.lp.shutdown(Instant::now() + Duration::from_secs(5));
        self.thread.take().unwrap().join().unwrap()?;
        r
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.lp.shutdown(Instant::now() + Duration::from_secs(1));
            let _ = t.join();
        }
    }
}

/// Sends `msg` and reads back as many bytes.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    got
}

/// Waits until `cond` holds, polling, for at most `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Reads until end of stream or error; returns the bytes and whether it ended cleanly.
pub fn read_to_end(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut v = Vec::new();
    let ok = s.read_to_end(&mut v).is_ok();
    (v, ok)
}

/// Resident set size of this process, in bytes.
pub fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The echo handler as netpoll users write it.
pub fn echo(c: &mut gonet::reactor::Connection) -> io::Result<()> {
    let n = c.len();
    let data = c.next(n)?;
    c.write_binary(data)?;
    c.flush()?;
    c.release();
    Ok(())
}
