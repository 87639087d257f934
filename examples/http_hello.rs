//! HTTP/1.1 "Hello, World!" server: one goroutine per connection, requests parsed with
//! `httparse`, keep-alive and pipelining (every complete request in the buffer is answered and
//! the responses go out in one write), `Content-Length` and chunked request bodies, and a
//! per-request read deadline so idle and slowloris clients cannot hold a goroutine.
//!
//! Run: `cargo run --release --example http_hello -- 127.0.0.1:8080 [TIMEOUT_SECS]` (workers
//! from `GONET_PROCS`; the request deadline defaults to `HTTP_HELLO_TIMEOUT`, else 10 s).
//!
//! Every path answers `Hello, World!`, except `/echo`, which answers with the request body.
//! Malformed requests get `400 Bad Request`, oversized heads `431 Request Header Fields Too
//! Large`; both are followed by a close.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant, SystemTime};

use gonet::net::{is_closed, TcpListener, TcpStream};
use httparse::Status;

/// Server settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Time a request (head and body) may take to arrive, counted from when the server starts
    /// waiting for it; an idle keep-alive connection is closed after it too.
    pub read_timeout: Duration,
    /// Largest request head (request line and headers) accepted.
    pub max_head: usize,
    /// Largest body `/echo` answers with; bodies sent to other paths are discarded as they
    /// arrive, whatever their size.
    pub max_echo: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config { read_timeout: Duration::from_secs(10), max_head: 16 * 1024, max_echo: 1 << 20 }
    }
}

const MAX_HEADERS: usize = 64;
/// A chunk-size line (with extensions) longer than this is rejected.
const MAX_CHUNK_LINE: usize = 1024;
/// How long a closing connection keeps draining what the client still sends, so that the
/// kernel does not answer unread data with a reset that could destroy the last response.
const LINGER: Duration = Duration::from_millis(500);

/// Accepts connections until the listener is closed, serving each on its own goroutine.
pub fn serve(ln: TcpListener, cfg: Config) -> io::Result<()> {
    let mut backoff = Duration::from_millis(5);
    loop {
        match ln.accept() {
            Ok((conn, _)) => {
                backoff = Duration::from_millis(5);
                // A connection's I/O error (reset, timeout) ends that connection only.
                gonet::go(move || handle(conn, &cfg));
            }
            Err(e) if is_closed(&e) => return Ok(()),
            Err(e) => {
                // Out of descriptors, most likely: wait for connections to close.
                eprintln!("http_hello: accept: {e}; retrying in {backoff:?}");
                gonet::time::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// A request refused with a status, after which the connection is closed.
#[derive(Debug)]
struct Reject(u16);

/// How the body of the request being received is framed, and how much is left.
enum Body {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Done,
}

/// A request whose head has been parsed.
struct Request {
    http10: bool,
    keep_alive: bool,
    head_only: bool,
    /// The body, collected for `/echo`.
    echo: Option<Vec<u8>>,
    body: Body,
}

/// One connection's state: the read buffer (`buf[start..end]` is unconsumed input), the
/// responses batched for the next write, and the request whose body is arriving.
struct Conn<'a> {
    conn: TcpStream,
    cfg: &'a Config,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    req: Option<Request>,
}

/// Serves one connection until the client closes it, asks to, misbehaves or times out.
pub fn handle(conn: TcpStream, cfg: &Config) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut c = Conn {
        conn,
        cfg,
        buf: vec![0; 4096],
        start: 0,
        end: 0,
        out: Vec::with_capacity(4096),
        req: None,
    };
    // The deadline covers one request: armed when the server starts waiting for it, re-armed
    // only once it is complete, so trickling bytes does not extend it.
    let mut armed = false;
    loop {
        let keep_open = match c.process(&mut armed) {
            Ok(k) => k,
            Err(Reject(status)) => {
                c.out.extend_from_slice(&error_response(status));
                false
            }
        };
        if !c.out.is_empty() {
            c.conn.set_write_deadline(Some(Instant::now() + cfg.read_timeout))?;
            c.conn.write_all(&c.out)?;
            c.out.clear();
        }
        if !keep_open {
            linger_close(&c.conn, cfg.read_timeout.min(LINGER));
            return Ok(());
        }
        if !armed {
            c.conn.set_read_deadline(Some(Instant::now() + cfg.read_timeout))?;
            armed = true;
        }
        c.make_room();
        let n = c.conn.read(&mut c.buf[c.end..])?;
        if n == 0 {
            return Ok(()); // the client closed (possibly mid-request: nothing to answer)
        }
        c.end += n;
    }
}

impl Conn<'_> {
    /// Answers every request complete in the buffer. Returns whether to keep the connection.
    fn process(&mut self, armed: &mut bool) -> Result<bool, Reject> {
        loop {
            if self.req.is_none() {
                if self.start == self.end {
                    return Ok(true);
                }
                match self.parse_head()? {
                    Some(req) => self.req = Some(req),
                    None => return Ok(true),
                }
            }
            let req = self.req.as_mut().expect("a request is in progress");
            let (used, done) = body_step(req, &self.buf[self.start..self.end], self.cfg)?;
            self.start += used;
            if !done {
                return Ok(true);
            }
            let req = self.req.take().expect("a request is in progress");
            respond(&mut self.out, &req);
            *armed = false;
            if !req.keep_alive {
                return Ok(false);
            }
        }
    }

    /// Parses the head at `start`, consuming it; `None` when it is not complete yet.
    fn parse_head(&mut self) -> Result<Option<Request>, Reject> {
        let data = &self.buf[self.start..self.end];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(data) {
            Ok(Status::Complete(n)) if n <= self.cfg.max_head => n,
            Ok(Status::Complete(_)) => return Err(Reject(431)),
            Ok(Status::Partial) if data.len() > self.cfg.max_head => return Err(Reject(431)),
            Ok(Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Reject(431)),
            Err(_) => return Err(Reject(400)),
        };
        let http10 = req.version == Some(0);
        let (mut length, mut chunked, mut hosts) = (None, false, 0);
        let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
        for h in req.headers.iter() {
            let value = trim(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = parse_length(value).ok_or(Reject(400))?;
                if length.is_some_and(|l| l != v) {
                    return Err(Reject(400));
                }
                length = Some(v);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // Only `chunked`, alone, is supported; it may be given once.
                if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                    return Err(Reject(501));
                }
                chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if h.name.eq_ignore_ascii_case("host") {
                hosts += 1;
            } else if h.name.eq_ignore_ascii_case("expect") {
                expect_continue = value.eq_ignore_ascii_case(b"100-continue");
            }
        }
        // Framing both ways is a request-smuggling vector; HTTP/1.1 requires exactly one Host.
        if (chunked && (length.is_some() || http10)) || (!http10 && hosts != 1) || hosts > 1 {
            return Err(Reject(400));
        }
        let path = req.path.unwrap_or("/");
        let echo = path.split('?').next() == Some("/echo");
        if echo && length.is_some_and(|l| l > self.cfg.max_echo as u64) {
            return Err(Reject(413));
        }
        let body = match length {
            _ if chunked => Body::ChunkSize,
            Some(l) if l > 0 => Body::Length(l),
            _ => Body::Done,
        };
        if expect_continue && !http10 && !matches!(body, Body::Done) && n == data.len() {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let request = Request {
            http10,
            keep_alive: !close && (!http10 || keep_alive),
            head_only: req.method == Some("HEAD"),
            echo: echo.then(Vec::new),
            body,
        };
        self.start += n;
        Ok(Some(request))
    }

    /// Makes room at the end of the buffer for the next read: resets it when empty, moves
    /// unconsumed bytes to the front, or grows it (the head limit bounds the growth, since
    /// bodies are consumed as they arrive).
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < 1024 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
    }
}

/// Consumes as much of the body of `req` as `data` holds. Returns the bytes used and whether
/// the body is complete.
fn body_step(req: &mut Request, data: &[u8], cfg: &Config) -> Result<(usize, bool), Reject> {
    let mut used = 0;
    loop {
        let rest = &data[used..];
        match req.body {
            Body::Done => return Ok((used, true)),
            Body::Length(left) | Body::ChunkData(left) => {
                let take = left.min(rest.len() as u64) as usize;
                if let Some(echo) = &mut req.echo {
                    echo.extend_from_slice(&rest[..take]);
                }
                used += take;
                let left = left - take as u64;
                req.body = match req.body {
                    Body::Length(_) if left == 0 => Body::Done,
                    Body::Length(_) => Body::Length(left),
                    _ if left == 0 => Body::ChunkEnd,
                    _ => Body::ChunkData(left),
                };
                if left > 0 {
                    return Ok((used, false));
                }
            }
            Body::ChunkSize => match httparse::parse_chunk_size(rest) {
                Ok(Status::Complete((n, size))) => {
                    used += n;
                    let echoed = req.echo.as_ref().map_or(0, |e| e.len() as u64);
                    if req.echo.is_some() && echoed.saturating_add(size) > cfg.max_echo as u64 {
                        return Err(Reject(413));
                    }
                    req.body = if size == 0 { Body::Trailers } else { Body::ChunkData(size) };
                }
                Ok(Status::Partial) if rest.len() > MAX_CHUNK_LINE => return Err(Reject(400)),
                Ok(Status::Partial) => return Ok((used, false)),
                Err(_) => return Err(Reject(400)),
            },
            Body::ChunkEnd => match rest {
                [b'\r', b'\n', ..] => {
                    used += 2;
                    req.body = Body::ChunkSize;
                }
                [] | [b'\r'] => return Ok((used, false)),
                _ => return Err(Reject(400)),
            },
            Body::Trailers => {
                let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match httparse::parse_headers(rest, &mut trailers) {
                    Ok(Status::Complete((n, _))) => {
                        used += n;
                        req.body = Body::Done;
                    }
                    Ok(Status::Partial) if rest.len() > cfg.max_head => return Err(Reject(431)),
                    Ok(Status::Partial) => return Ok((used, false)),
                    Err(httparse::Error::TooManyHeaders) => return Err(Reject(431)),
                    Err(_) => return Err(Reject(400)),
                }
            }
        }
    }
}

/// Appends the response to `req` to `out`.
fn respond(out: &mut Vec<u8>, req: &Request) {
    let (body, kind): (&[u8], &str) = match &req.echo {
        Some(b) => (b, "application/octet-stream"),
        None => (b"Hello, World!", "text/plain; charset=utf-8"),
    };
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: gonet\r\nDate: ");
    push_date(out);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n", body.len());
    if !req.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if req.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !req.head_only {
        out.extend_from_slice(body);
    }
}

/// The response to a refused request.
fn error_response(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Not Implemented",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nServer: gonet\r\nDate: ").into_bytes();
    push_date(&mut out);
    let body = format!("{status} {reason}\n");
    let _ = write!(
        out,
        "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    out
}

/// Appends the current time in HTTP date format, formatted once a second per worker thread.
fn push_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// Half-closes, then drains the client's input for at most `linger` before the close, so the
/// last response is not lost to a reset.
fn linger_close(conn: &TcpStream, linger: Duration) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_deadline(Some(Instant::now() + linger));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 1 << 20 {
        match (&*conn).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &v[start..end]
}

/// A `Content-Length` value: decimal digits only.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The request deadline: argv[2], else `HTTP_HELLO_TIMEOUT`, in (fractional) seconds.
fn timeout_setting() -> Result<Option<Duration>, String> {
    let Some(v) = std::env::args().nth(2).or_else(|| std::env::var("HTTP_HELLO_TIMEOUT").ok())
    else {
        return Ok(None);
    };
    match v.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(format!("timeout {v:?} is not a positive number of seconds")),
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let mut cfg = Config::default();
    match timeout_setting() {
        Ok(t) => cfg.read_timeout = t.unwrap_or(cfg.read_timeout),
        Err(e) => {
            eprintln!("http_hello: {e}");
            std::process::exit(2);
        }
    }
    gonet::run(move || {
        let ln = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("http_hello: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
        let local = ln.local_addr().expect("bound listener has an address");
        eprintln!(
            "http_hello: listening on http://{local} (request deadline {:?})",
            cfg.read_timeout
        );
        if let Err(e) = serve(ln, cfg) {
            eprintln!("http_hello: {e}");
            std::process::exit(1);
        }
    });
}
