//! Tests of the `resp_kv` example server, run in-process on a gonet runtime and driven over
//! loopback: every command, pipelining, inline commands, binary and large values, protocol
//! errors and limits, 1,000 concurrent clients, and `redis-cli` when it is installed.

#[allow(dead_code)]
#[path = "../../examples/resp_kv.rs"]
mod resp_kv;

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Starts the server on a two-worker runtime in a background thread; returns its address.
fn start() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            resp_kv::serve(ln, Arc::new(resp_kv::Store::new(8))).unwrap();
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server started")
}

#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

use Reply::*;

use common::{raise_fd_limit, within};

fn ok() -> Reply {
    Simple("OK".into())
}

fn bulk(v: &[u8]) -> Reply {
    Bulk(Some(v.to_vec()))
}

/// Parses one reply at the front of `buf`: the reply and its length, or `None` if incomplete.
fn parse(buf: &[u8]) -> Option<(Reply, usize)> {
    let eol = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..eol]).expect("reply line is text");
    let next = eol + 2;
    match buf[0] {
        b'+' => Some((Simple(line.into()), next)),
        b'-' => Some((Error(line.into()), next)),
        b':' => Some((Int(line.parse().unwrap()), next)),
        b'$' => match line.parse::<i64>().unwrap() {
            -1 => Some((Bulk(None), next)),
            n => {
                let end = next + n as usize;
                (buf.len() >= end + 2).then(|| (Bulk(Some(buf[next..end].to_vec())), end + 2))
            }
        },
        b'*' => match line.parse::<i64>().unwrap() {
            -1 => Some((Array(None), next)),
            n => {
                let (mut items, mut at) = (Vec::new(), next);
                for _ in 0..n {
                    let (r, len) = parse(&buf[at..])?;
                    items.push(r);
                    at += len;
                }
                Some((Array(Some(items)), at))
            }
        },
        c => panic!("bad reply type byte {c:?}"),
    }
}

/// RESP encoding of a command.
fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A blocking test client with bounded reads.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, data: &[u8]) {
        self.s.write_all(data).unwrap();
    }

    fn reply(&mut self) -> Reply {
        loop {
            if let Some((r, n)) = parse(&self.buf) {
                self.buf.drain(..n);
                return r;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.s.read(&mut chunk).expect("read reply");
            assert!(n > 0, "connection closed while a reply was expected");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&cmd(args));
        self.reply()
    }

    /// Whether the server closed the connection with nothing more sent.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        match self.s.read(&mut b) {
            Ok(0) => self.buf.is_empty(),
            Ok(n) => panic!("unexpected data: {:?}", String::from_utf8_lossy(&b[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("connection still open: {e}"),
        }
    }
}

#[test]
fn commands() {
    within(Duration::from_secs(30), || {
        let mut c = Client::connect(start());
        assert_eq!(c.call(&[b"PING"]), Simple("PONG".into()));
        assert_eq!(c.call(&[b"ping", b"hi"]), bulk(b"hi"));
        assert_eq!(c.call(&[b"ECHO", b"x\r\ny"]), bulk(b"x\r\ny"));
        assert_eq!(c.call(&[b"GET", b"k"]), Bulk(None));
        assert_eq!(c.call(&[b"SET", b"k", b"v1"]), ok());
        assert_eq!(c.call(&[b"get", b"k"]), bulk(b"v1"));
        assert_eq!(c.call(&[b"SET", b"k", b"v2", b"NX"]), Bulk(None));
        assert_eq!(c.call(&[b"SET", b"k", b"v2", b"XX"]), ok());
        assert_eq!(c.call(&[b"SET", b"new", b"v", b"XX"]), Bulk(None));
        assert_eq!(c.call(&[b"SET", b"k", b"v", b"EX", b"10"]), Error("ERR syntax error".into()));
        assert_eq!(c.call(&[b"GET", b"k"]), bulk(b"v2"));
        assert_eq!(c.call(&[b"SET", b"", b""]), ok()); // empty key and value
        assert_eq!(c.call(&[b"GET", b""]), bulk(b""));
        assert_eq!(c.call(&[b"EXISTS", b"k", b"k", b"nope"]), Int(2));
        assert_eq!(c.call(&[b"DEL", b"k", b"nope", b""]), Int(2));
        assert_eq!(c.call(&[b"EXISTS", b"k"]), Int(0));
        assert_eq!(c.call(&[b"INCR", b"n"]), Int(1));
        assert_eq!(c.call(&[b"INCR", b"n"]), Int(2));
        assert_eq!(c.call(&[b"GET", b"n"]), bulk(b"2"));
        assert_eq!(c.call(&[b"SET", b"n", b"-10"]), ok());
        assert_eq!(c.call(&[b"INCR", b"n"]), Int(-9));
        assert_eq!(c.call(&[b"SET", b"n", b"9223372036854775807"]), ok());
        assert_eq!(
            c.call(&[b"INCR", b"n"]),
            Error("ERR increment or decrement would overflow".into())
        );
        for bad in [&b"abc"[..], b"01", b" 1", b"1.5", b""] {
            assert_eq!(c.call(&[b"SET", b"s", bad]), ok());
            assert_eq!(
                c.call(&[b"INCR", b"s"]),
                Error("ERR value is not an integer or out of range".into())
            );
        }
        assert_eq!(c.call(&[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"]), ok());
        assert_eq!(
            c.call(&[b"MGET", b"a", b"zz", b"c", b"b", b"a"]),
            Array(Some(vec![bulk(b"1"), Bulk(None), bulk(b"3"), bulk(b"2"), bulk(b"1")]))
        );
        assert_eq!(
            c.call(&[b"MSET", b"a", b"1", b"b"]),
            Error("ERR wrong number of arguments for 'mset' command".into())
        );
        assert_eq!(
            c.call(&[b"GET"]),
            Error("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            c.call(&[b"NOPE", b"x"]),
            Error("ERR unknown command 'NOPE', with args beginning with: 'x' ".into())
        );
        assert_eq!(c.call(&[b"DBSIZE"]), Int(5)); // n, s, a, b, c
        assert_eq!(c.call(&[b"COMMAND", b"DOCS"]), Array(Some(vec![])));
        assert!(matches!(c.call(&[b"COMMAND", b"COUNT"]), Int(n) if n > 0));
        assert_eq!(
            c.call(&[b"CONFIG", b"GET", b"save", b"appendonly"]),
            Array(Some(vec![bulk(b"save"), bulk(b""), bulk(b"appendonly"), bulk(b"no")]))
        );
        assert_eq!(c.call(&[b"CONFIG", b"GET", b"maxmemory"]), Array(Some(vec![])));
        assert_eq!(c.call(&[b"SELECT", b"0"]), ok());
        assert!(matches!(c.call(&[b"SELECT", b"1"]), Error(_)));
        assert_eq!(c.call(&[b"FLUSHALL"]), ok());
        assert_eq!(c.call(&[b"DBSIZE"]), Int(0));
        // Empty commands are skipped.
        c.send(b"*0\r\n*-1\r\n\r\n");
        assert_eq!(c.call(&[b"PING"]), Simple("PONG".into()));
        assert_eq!(c.call(&[b"QUIT"]), ok());
        assert!(c.closed());
    });
}

#[test]
fn pipelining_and_inline_commands() {
    within(Duration::from_secs(30), || {
        let mut c = Client::connect(start());
        // 1,000 commands in one write; replies come back in order.
        let mut batch = Vec::new();
        for i in 0..500 {
            let (k, v) = (format!("key:{i}"), format!("value:{i}"));
            batch.extend(cmd(&[b"SET", k.as_bytes(), v.as_bytes()]));
            batch.extend(cmd(&[b"GET", k.as_bytes()]));
        }
        c.send(&batch);
        for i in 0..500 {
            assert_eq!(c.reply(), ok());
            assert_eq!(c.reply(), bulk(format!("value:{i}").as_bytes()));
        }
        // A command split at every byte boundary across writes.
        let one = cmd(&[b"SET", b"split", b"across writes"]);
        for b in &one {
            c.send(&[*b]);
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(c.reply(), ok());
        // Inline commands (as telnet, redis-benchmark's PING_INLINE and old clients send).
        c.send(b"PING\r\nSET inline  \"hello world\"\nGET inline\r\n  EXISTS\tinline nosuch\r\n");
        assert_eq!(c.reply(), Simple("PONG".into()));
        assert_eq!(c.reply(), ok());
        assert_eq!(c.reply(), bulk(b"hello world"));
        assert_eq!(c.reply(), Int(1));
        // Inline and RESP mixed in one write.
        c.send(&[&b"ECHO a\r\n"[..], &cmd(&[b"ECHO", b"b"]), b"ECHO c\r\n"].concat());
        assert_eq!((c.reply(), c.reply(), c.reply()), (bulk(b"a"), bulk(b"b"), bulk(b"c")));
    });
}

#[test]
fn binary_and_large_values() {
    within(Duration::from_secs(60), || {
        let mut c = Client::connect(start());
        let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        assert_eq!(c.call(&[b"SET", b"bin\0key", &bin]), ok());
        assert_eq!(c.call(&[b"GET", b"bin\0key"]), Bulk(Some(bin)));
        // 16 MiB value, sent in 64 KiB pieces.
        let big = vec![b'z'; 16 << 20];
        let msg = cmd(&[b"SET", b"big", &big]);
        for piece in msg.chunks(64 * 1024) {
            c.send(piece);
        }
        assert_eq!(c.reply(), ok());
        assert_eq!(c.call(&[b"GET", b"big"]), Bulk(Some(big)));
        // Many arguments in one command.
        let keys: Vec<Vec<u8>> = (0..20_000).map(|i| format!("m{i}").into_bytes()).collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in &keys {
            args.push(k);
            args.push(k);
        }
        assert_eq!(c.call(&args), ok());
        args.truncate(1);
        args[0] = b"MGET";
        args.extend(keys.iter().map(|k| &k[..]));
        let Array(Some(vals)) = c.call(&args) else { panic!("MGET returns an array") };
        assert!(vals.iter().zip(&keys).all(|(v, k)| *v == bulk(k)));
    });
}

#[test]
fn protocol_errors_reply_then_close() {
    within(Duration::from_secs(60), || {
        let addr = start();
        let cases: [(&[u8], &str); 11] = [
            (b"*abc\r\n", "invalid multibulk length"),
            (b"*2000000\r\n", "invalid multibulk length"),
            (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
            (b"*1\r\n$-5\r\n", "invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "invalid bulk length"),
            (b"*1\r\n$01\r\nx\r\n", "invalid bulk length"),
            (b"*1\r\n$4\r\nPINGxx", "expected CRLF after bulk string"),
            (b"*1\r\n$4\rx", "expected CRLF"),
            (b"SET k \"unbalanced\r\n", "unbalanced quotes in request"),
            (b"*1\r\n$999999999999999999999\r\n", "invalid bulk length"),
            (b"*1\r\n$", "too big bulk count string"), // followed by 70 KB of digits
        ];
        for (i, (input, msg)) in cases.into_iter().enumerate() {
            let mut c = Client::connect(addr);
            // A valid command first: its reply precedes the error.
            c.send(&[&cmd(&[b"PING"])[..], input].concat());
            if i == 10 {
                c.send(&vec![b'1'; 70 * 1024]);
            }
            assert_eq!(c.reply(), Simple("PONG".into()));
            assert_eq!(c.reply(), Error(format!("ERR Protocol error: {msg}")), "case {i}");
            assert!(c.closed(), "case {i}");
        }
        // An inline command longer than 64 KB with no newline.
        let mut c = Client::connect(addr);
        c.send(&vec![b'a'; 70 * 1024]);
        assert_eq!(c.reply(), Error("ERR Protocol error: too big inline request".into()));
        assert!(c.closed());
        // Garbage bytes: an error, never a hang or a crash; the server still serves.
        let mut c = Client::connect(addr);
        c.send(b"\x00\xff*\r\n$$$\r\n");
        assert!(matches!(c.reply(), Error(_)));
        let mut c = Client::connect(addr);
        assert_eq!(c.call(&[b"PING"]), Simple("PONG".into()));
    });
}

#[test]
fn thousand_concurrent_clients() {
    raise_fd_limit();
    within(Duration::from_secs(120), || {
        let addr = start();
        // Goroutine clients on a runtime of their own, all connected before any sends.
        let ok = gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let (connected, go_ahead) =
                (gonet::sync::WaitGroup::new(), gonet::sync::WaitGroup::new());
            connected.add(1000);
            go_ahead.add(1);
            let clients: Vec<_> = (0..1000)
                .map(|i| {
                    let (connected, go_ahead) = (connected.clone(), go_ahead.clone());
                    gonet::go(move || -> std::io::Result<bool> {
                        let s = gonet::net::TcpStream::connect(addr);
                        connected.done();
                        let mut s = s?;
                        s.set_deadline(Some(Instant::now() + Duration::from_secs(60)))?;
                        go_ahead.wait();
                        let key = format!("client:{i}");
                        let batch = [
                            cmd(&[b"SET", key.as_bytes(), key.as_bytes()]),
                            cmd(&[b"INCR", b"counter"]),
                            cmd(&[b"GET", key.as_bytes()]),
                        ]
                        .concat();
                        s.write_all(&batch)?;
                        let mut got = Vec::new();
                        let mut buf = [0u8; 1024];
                        let mut replies = Vec::new();
                        while replies.len() < 3 {
                            let n = s.read(&mut buf)?;
                            if n == 0 {
                                return Ok(false);
                            }
                            got.extend_from_slice(&buf[..n]);
                            while let Some((r, len)) = parse(&got) {
                                got.drain(..len);
                                replies.push(r);
                            }
                        }
                        Ok(replies[0] == ok()
                            && matches!(replies[1], Int(1..=1000))
                            && replies[2] == bulk(key.as_bytes()))
                    })
                })
                .collect();
            connected.wait();
            go_ahead.done();
            clients.into_iter().map(|c| c.join()).filter(|r| matches!(r, Ok(Ok(true)))).count()
        });
        assert_eq!(ok, 1000);
        // Every INCR was applied exactly once.
        let mut c = Client::connect(addr);
        assert_eq!(c.call(&[b"GET", b"counter"]), bulk(b"1000"));
        assert_eq!(c.call(&[b"DBSIZE"]), Int(1001));
    });
}

#[test]
fn redis_cli_interop() {
    if !common::redis_cli_available() {
        return;
    }
    within(Duration::from_secs(30), || {
        let addr = start();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("timeout")
                .args(["10", "redis-cli", "-h", "127.0.0.1", "-p", &addr.port().to_string()])
                .args(args)
                .output()
                .expect("run redis-cli");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(run(&["PING"]), "PONG");
        assert_eq!(run(&["SET", "greeting", "hello world"]), "OK");
        assert_eq!(run(&["GET", "greeting"]), "hello world");
        assert_eq!(run(&["INCR", "visits"]), "1");
        assert_eq!(run(&["MGET", "greeting", "visits", "none"]), "hello world\n1");
    });
}
