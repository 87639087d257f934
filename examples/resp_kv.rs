//! Redis-protocol (RESP2) key-value server: one goroutine per connection, a map sharded
//! across `gonet::sync::Mutex`es, pipelining (every complete command in the buffer is run and
//! the replies go out in one write) and inline commands. Speaks enough for `redis-cli` and
//! `redis-benchmark`: PING, ECHO, SET [NX|XX], GET, DEL, EXISTS, INCR, MGET, MSET, DBSIZE,
//! FLUSHALL/FLUSHDB, SELECT 0, QUIT, and minimal COMMAND and CONFIG GET.
//!
//! Run: `cargo run --release --example resp_kv -- 127.0.0.1:6380 [SHARDS] [--reactor] [--tls]`
//! (workers from `GONET_PROCS`), then `redis-cli -p 6380`. With `--reactor` the same commands
//! are served by a `gonet::reactor::EventLoop` (netpoll's model: a handler called when a
//! connection has input, no goroutine per idle connection) instead of a goroutine per
//! connection. `--tls` (built with `--features rustls`; implies `--reactor`) serves them over
//! TLS on the reactor (`Builder::tls`) with a self-signed certificate made at start (as
//! `reactor_tls_echo` does) and written to `$TMPDIR/gonet-resp_kv-cert.pem`: then
//! `redis-cli --tls --insecure -p 6380`, or `--cacert` that file with `--sni localhost`.
//!
//! Malformed input gets `-ERR Protocol error: ...` and a close, as in Redis; a bulk string is
//! limited to 512 MB, a command to 1M arguments and an inline command to 64 KB.

use std::collections::hash_map::{HashMap, RandomState};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{is_closed, TcpListener, TcpStream};
use gonet::sync::{Mutex, MutexGuard};

/// Largest bulk string accepted (Redis's `proto-max-bulk-len`).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Most arguments in one command.
pub const MAX_ARGS: usize = 1024 * 1024;
/// Longest inline command, and longest `*N` / `$N` line.
pub const MAX_INLINE: usize = 64 * 1024;
/// Largest query buffer (Redis's `client-query-buffer-limit`).
pub const MAX_QUERY: usize = 1 << 30;
/// Default number of shards of the map.
pub const DEFAULT_SHARDS: usize = 64;

/// The commands served.
const COMMANDS: [&[u8]; 16] = [
    b"PING",
    b"ECHO",
    b"GET",
    b"SET",
    b"DEL",
    b"EXISTS",
    b"INCR",
    b"MGET",
    b"MSET",
    b"DBSIZE",
    b"FLUSHALL",
    b"FLUSHDB",
    b"SELECT",
    b"QUIT",
    b"COMMAND",
    b"CONFIG",
];

type Shard = HashMap<Vec<u8>, Vec<u8>>;

/// The key space: a map split into shards, each behind its own goroutine-aware lock.
pub struct Store {
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Store {
    /// An empty store with `shards` shards (at least one).
    pub fn new(shards: usize) -> Store {
        let shards = (0..shards.max(1)).map(|_| Mutex::new(HashMap::new())).collect();
        Store { hasher: RandomState::new(), shards }
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) % self.shards.len() as u64) as usize
    }

    fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Locks the shards of all `keys` in ascending order (so that multi-key commands never
    /// deadlock) and returns the shard index of each key and the guards by shard index.
    fn lock_many<'k>(
        &self,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> (Vec<usize>, Vec<(usize, MutexGuard<'_, Shard>)>) {
        let idx: Vec<usize> = keys.map(|k| self.shard_of(k)).collect();
        let mut order = idx.clone();
        order.sort_unstable();
        order.dedup();
        let guards = order.into_iter().map(|i| (i, self.shards[i].lock())).collect();
        (idx, guards)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The guard of shard `shard` among guards sorted by shard index.
fn guard<'g, 's>(
    guards: &'g mut [(usize, MutexGuard<'s, Shard>)],
    shard: usize,
) -> &'g mut MutexGuard<'s, Shard> {
    let i = guards.binary_search_by_key(&shard, |g| g.0).expect("shard was locked");
    &mut guards[i].1
}

/// Accepts connections until the listener is closed, serving each on its own goroutine.
pub fn serve(ln: TcpListener, store: Arc<Store>) -> io::Result<()> {
    let mut backoff = Duration::from_millis(5);
    loop {
        match ln.accept() {
            Ok((conn, _)) => {
                backoff = Duration::from_millis(5);
                let store = store.clone();
                // A connection's I/O error ends that connection only.
                gonet::go(move || handle(conn, &store));
            }
            Err(e) if is_closed(&e) => return Ok(()),
            Err(e) => {
                eprintln!("resp_kv: accept: {e}; retrying in {backoff:?}");
                gonet::time::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Serves one connection until the client closes it, sends QUIT or breaks the protocol.
pub fn handle(mut conn: TcpStream, store: &Store) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    let (mut start, mut end) = (0, 0);
    let mut parser = Parser::default();
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        let mut close = false;
        loop {
            match parser.parse(&buf[start..end]) {
                Ok(Some(n)) => {
                    if !parser.args.is_empty() {
                        let args = Args { data: &buf[start..start + n], ranges: &parser.args };
                        close = execute(args, store, &mut out);
                    }
                    parser.args.clear();
                    start += n;
                    if close {
                        break;
                    }
                    if out.len() >= 64 * 1024 {
                        conn.write_all(&out)?;
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(msg) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {msg}\r\n").as_bytes());
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if close {
            linger_close(&conn);
            return Ok(());
        }
        // Make room for the next read. The parser's positions are relative to `start`.
        if start == end {
            (start, end) = (0, 0);
            if buf.len() > 1 << 20 {
                buf = vec![0u8; 16 * 1024]; // give back what a large command took
            }
        }
        if buf.len() - end < 4096 {
            if start > 0 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else if buf.len() >= MAX_QUERY {
                conn.write_all(b"-ERR Protocol error: query buffer limit exceeded\r\n")?;
                linger_close(&conn);
                return Ok(());
            } else {
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = conn.read(&mut buf[end..])?;
        if n == 0 {
            return Ok(());
        }
        end += n;
    }
}

/// Input a reactor connection may buffer: the largest command it can hold whole.
pub const REACTOR_INPUT_CAP: usize = 64 << 20;

/// The same server on the reactor: `handle_reactor` runs whenever a connection has input.
pub fn serve_reactor(ln: TcpListener, store: Arc<Store>) -> io::Result<()> {
    reactor_builder(store).build().serve(ln)
}

fn reactor_builder(store: Arc<Store>) -> gonet::reactor::Builder {
    gonet::reactor::EventLoop::builder(move |c| handle_reactor(c, &store))
        .input_cap(REACTOR_INPUT_CAP)
}

/// The reactor server over TLS with `cfg`: the handler is the same, it sees plaintext.
#[cfg(feature = "rustls")]
pub fn serve_reactor_tls(
    ln: TcpListener,
    store: Arc<Store>,
    cfg: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    reactor_builder(store).tls(cfg).build().serve(ln)
}

#[cfg(feature = "rustls")]
#[allow(dead_code)]
#[path = "reactor_tls_echo.rs"]
pub mod reactor_tls_echo;

/// A TLS configuration with a self-signed certificate for `localhost`, `127.0.0.1` and `::1`,
/// whose PEM is written to `$TMPDIR/gonet-resp_kv-cert.pem`.
#[cfg(feature = "rustls")]
pub fn self_signed_tls() -> Result<Arc<rustls::ServerConfig>, String> {
    let (cert, key, pem) = reactor_tls_echo::self_signed().map_err(|e| e.to_string())?;
    let path = std::env::temp_dir().join("gonet-resp_kv-cert.pem");
    std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("resp_kv: self-signed certificate written to {}", path.display());
    reactor_tls_echo::server_config(cert, key, &[]).map_err(|e| e.to_string())
}

thread_local! {
    /// Reply buffer of the handler goroutines of this worker (replies are copied into the
    /// connection's output, so one buffer per thread serves every connection).
    static REPLIES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs every complete command in the connection's input and sends the replies in one
/// flush; an incomplete command stays in the input until more arrives.
pub fn handle_reactor(c: &mut gonet::reactor::Connection, store: &Store) -> io::Result<()> {
    let n = c.len();
    let data = c.peek(n)?;
    let mut parser = Parser::default();
    let (mut start, mut close) = (0, false);
    REPLIES.with(|out| -> io::Result<()> {
        let mut out = out.borrow_mut();
        out.clear();
        loop {
            match parser.parse(&data[start..]) {
                Ok(Some(k)) => {
                    if !parser.args.is_empty() {
                        let args = Args { data: &data[start..start + k], ranges: &parser.args };
                        close = execute(args, store, &mut out);
                    }
                    parser.args.clear();
                    start += k;
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(msg) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {msg}\r\n").as_bytes());
                    close = true;
                    break;
                }
            }
        }
        if start == 0 && !close && n >= REACTOR_INPUT_CAP {
            out.extend_from_slice(b"-ERR Protocol error: query buffer limit exceeded\r\n");
            close = true;
        }
        c.write_binary(&out)
    })?;
    c.skip(start)?;
    c.flush()?;
    if close {
        c.close();
    }
    Ok(())
}

/// Half-closes, then drains the client's input briefly so the last reply is not lost to a
/// reset caused by unread data.
fn linger_close(conn: &TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_deadline(Some(Instant::now() + Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 1 << 20 {
        match (&*conn).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Incremental parser of the command at the front of the unconsumed input. Its state survives
/// between reads, so a large command is not parsed again from its start on every read.
#[derive(Default)]
struct Parser {
    /// The arguments parsed so far, as ranges relative to the command's first byte.
    args: Vec<Range<usize>>,
    /// Number of arguments announced by the `*N` line (0 before it).
    want: usize,
    /// Bytes of the command parsed so far.
    off: usize,
}

impl Parser {
    /// Parses on from where the last call stopped. `Some(n)`: a command of `n` bytes is
    /// complete, its arguments in `args` (none for an empty command, which is skipped).
    fn parse(&mut self, data: &[u8]) -> Result<Option<usize>, String> {
        if self.off == 0 {
            match data.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return self.inline(data),
            }
            let Some((line, next)) = line(data, 1, "too big mbulk count string")? else {
                return Ok(None);
            };
            let n = parse_int(line).filter(|&n| n <= MAX_ARGS as i64);
            let n = n.ok_or("invalid multibulk length")?;
            if n <= 0 {
                return Ok(Some(next)); // `*0` and `*-1` are no command
            }
            self.want = n as usize;
            self.args.reserve(self.want.min(1024));
            self.off = next;
        }
        while self.args.len() < self.want {
            match data.get(self.off) {
                None => return Ok(None),
                Some(b'$') => {}
                Some(&c) => return Err(format!("expected '$', got '{}'", c.escape_ascii())),
            }
            let Some((line, from)) = line(data, self.off + 1, "too big bulk count string")? else {
                return Ok(None);
            };
            let len = parse_int(line).filter(|&l| (0..=MAX_BULK as i64).contains(&l));
            let to = from + len.ok_or("invalid bulk length")? as usize;
            match data.get(to..to + 2) {
                None => return Ok(None), // the `$N` line is read again next time: it is short
                Some(b"\r\n") => {}
                Some(_) => return Err("expected CRLF after bulk string".into()),
            }
            self.args.push(from..to);
            self.off = to + 2;
        }
        let n = self.off;
        (self.want, self.off) = (0, 0);
        Ok(Some(n))
    }

    /// An inline command: words separated by blanks, ending at `\n`. Quotes group words
    /// (without escape decoding).
    fn inline(&mut self, data: &[u8]) -> Result<Option<usize>, String> {
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            if data.len() > MAX_INLINE {
                return Err("too big inline request".into());
            }
            return Ok(None);
        };
        if nl > MAX_INLINE {
            return Err("too big inline request".into());
        }
        let end = if nl > 0 && data[nl - 1] == b'\r' { nl - 1 } else { nl };
        let mut i = 0;
        while i < end {
            match data[i] {
                b' ' | b'\t' => i += 1,
                q @ (b'"' | b'\'') => {
                    let close = data[i + 1..end].iter().position(|&b| b == q);
                    let close = close.ok_or("unbalanced quotes in request")? + i + 1;
                    self.args.push(i + 1..close);
                    i = close + 1;
                    if i < end && !matches!(data[i], b' ' | b'\t') {
                        return Err("unbalanced quotes in request".into());
                    }
                }
                _ => {
                    let len = data[i..end].iter().position(|&b| matches!(b, b' ' | b'\t'));
                    let to = len.map_or(end, |l| i + l);
                    self.args.push(i..to);
                    i = to;
                }
            }
        }
        Ok(Some(nl + 1))
    }
}

/// The `\r\n`-terminated line starting at `from`, and the position after it.
fn line<'a>(
    data: &'a [u8],
    from: usize,
    too_big: &str,
) -> Result<Option<(&'a [u8], usize)>, String> {
    let rest = data.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r') {
        Some(i) if i > MAX_INLINE => Err(too_big.into()),
        Some(i) => match rest.get(i + 1) {
            Some(b'\n') => Ok(Some((&rest[..i], from + i + 2))),
            Some(_) => Err("expected CRLF".into()),
            None => Ok(None),
        },
        None if rest.len() > MAX_INLINE => Err(too_big.into()),
        None => Ok(None),
    }
}

/// A decimal integer as Redis reads one (`string2ll`): no sign but `-`, no leading zeros, no
/// blanks, no overflow.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', d @ ..] => (true, d),
        d => (false, d),
    };
    match digits {
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] if digits.len() <= 19 => {}
        _ => return None,
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if neg { n.checked_sub(d)? } else { n.checked_add(d)? };
    }
    Some(n)
}

/// The arguments of a parsed command, borrowed from the read buffer.
#[derive(Clone, Copy)]
struct Args<'a> {
    data: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    fn len(&self) -> usize {
        self.ranges.len()
    }
    fn get(&self, i: usize) -> &'a [u8] {
        &self.data[self.ranges[i].clone()]
    }
    fn iter(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        self.ranges[from..].iter().map(move |r| &data[r.clone()])
    }
}

/// Runs one command, appending its reply to `out`. Returns whether to close the connection.
fn execute(args: Args<'_>, store: &Store, out: &mut Vec<u8>) -> bool {
    let mut upper = [0u8; 16];
    let name = args.get(0);
    let cmd = if name.len() <= upper.len() {
        upper[..name.len()].copy_from_slice(name);
        upper[..name.len()].make_ascii_uppercase();
        &upper[..name.len()]
    } else {
        &[][..]
    };
    let argc = args.len();
    match (cmd, argc) {
        (b"PING", 1) => out.extend_from_slice(b"+PONG\r\n"),
        (b"PING" | b"ECHO", 2) => bulk(out, args.get(1)),
        (b"GET", 2) => {
            let key = args.get(1);
            match store.lock(key).get(key) {
                Some(v) => bulk(out, v),
                None => nil(out),
            }
        }
        (b"SET", 3..) => set(args, store, out),
        (b"DEL", 2..) => {
            let n = args.iter(1).filter(|k| store.lock(k).remove(*k).is_some()).count();
            int(out, n as i64);
        }
        (b"EXISTS", 2..) => {
            let n = args.iter(1).filter(|k| store.lock(k).contains_key(*k)).count();
            int(out, n as i64);
        }
        (b"INCR", 2) => incr(args.get(1), store, out),
        (b"MGET", 2..) => {
            let (idx, mut guards) = store.lock_many(args.iter(1));
            out.extend_from_slice(format!("*{}\r\n", argc - 1).as_bytes());
            for (key, shard) in args.iter(1).zip(idx) {
                match guard(&mut guards, shard).get(key) {
                    Some(v) => bulk(out, v),
                    None => nil(out),
                }
            }
        }
        (b"MSET", 3..) if argc % 2 == 1 => {
            let (idx, mut guards) = store.lock_many(args.iter(1).step_by(2));
            for (i, shard) in idx.into_iter().enumerate() {
                put(guard(&mut guards, shard), args.get(1 + 2 * i), args.get(2 + 2 * i));
            }
            ok(out);
        }
        (b"DBSIZE", 1) => int(out, store.len() as i64),
        (b"FLUSHALL" | b"FLUSHDB", _) => {
            store.shards.iter().for_each(|s| s.lock().clear());
            ok(out);
        }
        (b"SELECT", 2) if args.get(1) == b"0" => ok(out),
        (b"SELECT", 2) => error(out, "ERR DB index is out of range"),
        (b"QUIT", _) => {
            ok(out);
            return true;
        }
        (b"COMMAND", 2) if args.get(1).eq_ignore_ascii_case(b"COUNT") => {
            int(out, COMMANDS.len() as i64)
        }
        (b"COMMAND", _) => out.extend_from_slice(b"*0\r\n"),
        (b"CONFIG", 3..) if args.get(1).eq_ignore_ascii_case(b"GET") => config_get(args, out),
        (known, _) if COMMANDS.contains(&known) => {
            let name = String::from_utf8_lossy(name).to_lowercase();
            error(out, &format!("ERR wrong number of arguments for '{name}' command"));
        }
        _ => {
            let mut msg =
                format!("ERR unknown command '{}', with args beginning with: ", shown(name));
            for a in args.iter(1) {
                msg.push_str(&format!("'{}' ", shown(a)));
            }
            error(out, &msg);
        }
    }
    false
}

fn set(args: Args<'_>, store: &Store, out: &mut Vec<u8>) {
    let (mut nx, mut xx) = (false, false);
    for opt in args.iter(3) {
        if opt.eq_ignore_ascii_case(b"NX") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"XX") {
            xx = true;
        } else {
            return error(out, "ERR syntax error"); // expiry options are not supported
        }
    }
    if nx && xx {
        return error(out, "ERR syntax error");
    }
    let key = args.get(1);
    let mut shard = store.lock(key);
    let exists = shard.contains_key(key);
    if (nx && exists) || (xx && !exists) {
        return nil(out);
    }
    put(&mut shard, key, args.get(2));
    ok(out);
}

/// Stores `value` under `key`, reusing the old value's allocation when there is one.
fn put(shard: &mut Shard, key: &[u8], value: &[u8]) {
    match shard.get_mut(key) {
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => {
            shard.insert(key.to_vec(), value.to_vec());
        }
    }
}

fn incr(key: &[u8], store: &Store, out: &mut Vec<u8>) {
    let mut shard = store.lock(key);
    let cur = match shard.get(key) {
        None => 0,
        Some(v) => match parse_int(v) {
            Some(n) => n,
            None => return error(out, "ERR value is not an integer or out of range"),
        },
    };
    let Some(n) = cur.checked_add(1) else {
        return error(out, "ERR increment or decrement would overflow");
    };
    put(&mut shard, key, n.to_string().as_bytes());
    int(out, n);
}

/// `CONFIG GET pattern...`: the few settings clients ask about (`*` lists them all).
fn config_get(args: Args<'_>, out: &mut Vec<u8>) {
    const SETTINGS: [(&str, &str); 3] = [("save", ""), ("appendonly", "no"), ("databases", "1")];
    let found: Vec<_> = SETTINGS
        .iter()
        .filter(|(name, _)| {
            args.iter(2).any(|p| p == b"*" || p.eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect();
    out.extend_from_slice(format!("*{}\r\n", found.len() * 2).as_bytes());
    for (name, value) in found {
        bulk(out, name.as_bytes());
        bulk(out, value.as_bytes());
    }
}

/// An argument as shown in an error message: at most 128 bytes, control characters escaped.
fn shown(a: &[u8]) -> String {
    a[..a.len().min(128)].escape_ascii().to_string()
}

fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn int(out: &mut Vec<u8>, n: i64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, ":{n}\r\n");
}

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    let _ = write!(out, "${}\r\n", v.len());
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6380".to_string());
    let tls = std::env::args().any(|a| a == "--tls");
    let reactor = tls || std::env::args().any(|a| a == "--reactor");
    let shards = match std::env::args()
        .nth(2)
        .filter(|a| !a.starts_with("--"))
        .map(|s| s.parse::<usize>())
    {
        None => DEFAULT_SHARDS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("resp_kv: SHARDS must be a positive integer");
            std::process::exit(2);
        }
    };
    let store = Arc::new(Store::new(shards));
    #[cfg(feature = "rustls")]
    let tls_cfg = if tls {
        match self_signed_tls() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("resp_kv: TLS setup: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    #[cfg(not(feature = "rustls"))]
    if tls {
        eprintln!("resp_kv: --tls needs the rustls feature (cargo run --features rustls ...)");
        std::process::exit(2);
    }
    gonet::run(move || {
        let ln = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("resp_kv: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
        let local = ln.local_addr().expect("bound listener has an address");
        let model = match (tls, reactor) {
            (true, _) => "reactor, TLS",
            (false, true) => "reactor",
            _ => "goroutine per connection",
        };
        eprintln!("resp_kv: listening on {local} ({shards} shards, {model})");
        #[cfg(feature = "rustls")]
        if let Some(cfg) = tls_cfg {
            if let Err(e) = serve_reactor_tls(ln, store, cfg) {
                eprintln!("resp_kv: {e}");
                std::process::exit(1);
            }
            return;
        }
        let r = if reactor { serve_reactor(ln, store) } else { serve(ln, store) };
        if let Err(e) = r {
            eprintln!("resp_kv: {e}");
            std::process::exit(1);
        }
    });
}
