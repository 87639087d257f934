//! `EventLoop`: the main reactor (an accept loop on the calling goroutine), the poll manager
//! (a balancer choosing which worker — which sub-reactor — owns each connection) and the
//! graceful shutdown.
//!
//! The sub-reactors are the runtime's workers and their epoll instances: an accepted socket
//! is registered on the chosen worker's epoll (`epoll_ctl` on another thread's epoll is
//! thread-safe) with the reactor tag, and from then on its events, its handler goroutine and
//! its timers all run on that worker (trigger.rs invariant 1). No thread and no poller is
//! added.

use std::io;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::conn::{
    call, ConnBox, ConnInner, Connection, Io, DEFAULT_INPUT_CAP, DEFAULT_OUTPUT_CAP,
};
use super::sock::Sock;
use super::EVENT_TAG;
use crate::net::{is_closed, TcpListener};
use crate::runtime::worker;

/// A request handler: called on a pooled goroutine whenever the connection has input.
pub(crate) type Handler = Arc<dyn Fn(&mut Connection) -> io::Result<()> + Send + Sync>;

/// How the poll manager assigns a new connection to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Balance {
    /// Each worker in turn, whatever connections have closed since.
    RoundRobin,
    /// A random worker.
    Random,
    /// The worker with the fewest open connections of this loop, ties taken in turn (the
    /// default): connections stay even as they come and go.
    #[default]
    LeastConnections,
}

/// Configures an [`EventLoop`].
pub struct Builder {
    on_request: Handler,
    on_prepare: Option<Handler>,
    on_connect: Option<Handler>,
    on_disconnect: Option<Handler>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    input_cap: usize,
    output_cap: usize,
    balance: Balance,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    #[cfg(feature = "rustls")]
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("reactor::Builder")
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("input_cap", &self.input_cap)
            .field("output_cap", &self.output_cap)
            .field("balance", &self.balance)
            .field("tls", &self.tls_enabled())
            .finish()
    }
}

type Hook = dyn Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static;

impl Builder {
    /// Called on the accept goroutine before the connection is registered: set
    /// per-connection options, timeouts, a handler, close callbacks here. It cannot wait for
    /// input or writability (nothing polls the connection yet): a read that finds too few
    /// bytes, or a flush that would block, fails with `InvalidInput`. An `Err` or a panic
    /// closes the connection (reported).
    pub fn on_prepare(
        mut self,
        f: impl Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_prepare = Some(Arc::new(f) as Arc<Hook>);
        self
    }
    /// Called on the connection's handler goroutine before its first request.
    pub fn on_connect(
        mut self,
        f: impl Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_connect = Some(Arc::new(f) as Arc<Hook>);
        self
    }
    /// Called once when the connection closes, before its close callbacks.
    pub fn on_disconnect(
        mut self,
        f: impl Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_disconnect = Some(Arc::new(f) as Arc<Hook>);
        self
    }
    /// Default read timeout of a connection's waiting reads.
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = Some(t);
        self
    }
    /// Default write timeout of a connection's waiting flushes.
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = Some(t);
        self
    }
    /// Default idle timeout: an idle connection is closed after this long.
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = Some(t);
        self
    }
    /// Most unconsumed input bytes buffered per connection ([`DEFAULT_INPUT_CAP`]); at the cap
    /// the connection is not read until the handler consumes, and TCP slows the peer.
    pub fn input_cap(mut self, bytes: usize) -> Self {
        self.input_cap = bytes.max(1);
        self
    }
    /// Most unsent output bytes per connection ([`DEFAULT_OUTPUT_CAP`]): a write past it sends
    /// first; a larger `malloc` is an `InvalidInput` error.
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes.max(1);
        self
    }
    /// How connections are spread over the workers.
    pub fn balance(mut self, b: Balance) -> Self {
        self.balance = b;
        self
    }
    fn tls_enabled(&self) -> bool {
        #[cfg(feature = "rustls")]
        return self.tls.is_some();
        #[cfg(not(feature = "rustls"))]
        false
    }
    /// Serves TLS (feature `rustls`): each connection runs a rustls server session with
    /// `config`. The handshake runs in the loop before `on_connect` (a client that sends
    /// nothing holds no goroutine, and one that has not finished within the
    /// [`handshake_timeout`](Builder::handshake_timeout) is closed with a report); the hooks
    /// and handlers see plaintext through the same `Connection` API, and what they write is
    /// encrypted when it is sent. ALPN and SNI come from [`Connection::alpn_protocol`] and
    /// [`Connection::server_name`]; certificate choice is the config's resolver.
    ///
    /// After the handshake, records are sealed and opened by gonet's record layer with the
    /// keys rustls hands over (rustls's kTLS API), so the loop serves from a copy of `config`
    /// with `enable_secret_extraction` set; rustls still answers key updates. AES-GCM and
    /// ChaCha20-Poly1305 suites, TLS 1.2 and 1.3: all that rustls negotiates. 0-RTT data is
    /// not accepted (`max_early_data_size` is 0 in the copy).
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(super::tls::server_config(config));
        self
    }
    /// How long a TLS handshake may take from accept (default 10 s); a client that has not
    /// finished by then is closed with a report. Only with [`tls`](Builder::tls).
    #[cfg(feature = "rustls")]
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }
    /// The event loop.
    pub fn build(self) -> EventLoop {
        EventLoop {
            shared: Arc::new(LoopShared {
                on_request: self.on_request,
                on_prepare: self.on_prepare,
                on_connect: self.on_connect,
                on_disconnect: self.on_disconnect,
                read_timeout: self.read_timeout,
                write_timeout: self.write_timeout,
                idle_timeout: self.idle_timeout,
                input_cap: self.input_cap,
                output_cap: self.output_cap,
                balance: self.balance,
                #[cfg(feature = "rustls")]
                tls: self.tls,
                #[cfg(feature = "rustls")]
                handshake_timeout: self.handshake_timeout,
                registry: Mutex::new(Registry::default()),
                counts: Mutex::new(Vec::new()),
                rr: AtomicUsize::new(0),
                rand: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
                listener: Mutex::new(None),
                stopping: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
            }),
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    conns: Vec<Option<Arc<ConnInner>>>,
    free: Vec<usize>,
    live: usize,
}

pub(crate) struct LoopShared {
    pub(crate) on_request: Handler,
    on_prepare: Option<Handler>,
    pub(crate) on_connect: Option<Handler>,
    pub(crate) on_disconnect: Option<Handler>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    input_cap: usize,
    output_cap: usize,
    balance: Balance,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    #[cfg(feature = "rustls")]
    handshake_timeout: Duration,
    registry: Mutex<Registry>,
    /// Connections per worker (LeastConnections).
    counts: Mutex<Vec<usize>>,
    rr: AtomicUsize,
    rand: AtomicU64,
    /// The listener `serve` accepts on, and the id of the runtime it serves on.
    listener: Mutex<Option<(u64, Arc<TcpListener>)>>,
    stopping: AtomicBool,
    /// `shutdown` has finished (serve may return).
    stopped: AtomicBool,
}

impl LoopShared {
    fn pick(&self, n: usize) -> usize {
        match self.balance {
            Balance::RoundRobin => self.rr.fetch_add(1, Ordering::Relaxed) % n,
            Balance::Random => {
                // xorshift64*, good enough to spread connections.
                let mut x = self.rand.load(Ordering::Relaxed);
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                self.rand.store(x, Ordering::Relaxed);
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
            }
            Balance::LeastConnections => {
                // Ties go round-robin (the scan starts one further each time), so connections
                // that come and go at an even rate also spread in turn.
                let start = self.rr.fetch_add(1, Ordering::Relaxed);
                let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                (0..n)
                    .map(|k| (start + k) % n)
                    .min_by_key(|&i| c.get(i).copied().unwrap_or(0))
                    .unwrap_or(0)
            }
        }
    }

    /// Counts a connection registered on worker `owner` (undone by `remove`).
    fn add(&self, owner: usize, workers: &[Arc<worker::WorkerShared>]) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() < workers.len() {
            c.resize(workers.len(), 0);
        }
        c[owner] += 1;
        drop(c);
        workers[owner].stats.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets a finalized connection: every path that closes a registered connection ends
    /// here (`finalize` on its worker, a failed registration, `reap` after the runtime ended),
    /// and only the first call for a connection uncounts it.
    pub(crate) fn remove(&self, c: &ConnInner, owner: usize) {
        let slot = c.slot.get();
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let counted = match r.conns.get_mut(slot) {
            Some(e) if e.as_ref().is_some_and(|x| std::ptr::eq(&**x, c)) => {
                *e = None;
                r.free.push(slot);
                r.live -= 1;
                true
            }
            _ => false,
        };
        drop(r);
        if !counted {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(owner) {
            *n = n.saturating_sub(1);
        }
        drop(counts);
        // The worker's count, while its runtime runs (`reap` comes after it ended).
        if let (Some(w), Io::Server { rt_id, .. }) = (worker::current(), &c.io) {
            if w.shared.rt_id == *rt_id {
                if let Some(ws) = w.rt.workers.get(owner) {
                    ws.stats.connections.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Runtime `rt_id` has ended (every worker thread has exited, so no poller, handler or
    /// timer touches its connections any more): forget its listener and connections and give
    /// back their registrations' references. Each connection (and with it the registry's
    /// reference cycle through `lp`) is then dropped and closes its descriptor.
    fn reap(&self, rt_id: u64) {
        {
            let mut l = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if l.as_ref().is_some_and(|(id, _)| *id == rt_id) {
                l.take();
            }
        }
        for c in self.snapshot() {
            let Io::Server { owner, rt_id: id, .. } = &c.io else { continue };
            if *id != rt_id {
                continue;
            }
            self.remove(&c, *owner);
            if c.registered.swap(false, Ordering::AcqRel) {
                // SAFETY: the registration's reference (`register`), not given back yet (the
                // flag); its worker's epoll is closed with the worker, so no event can carry
                // the pointer any more.
                unsafe { Arc::decrement_strong_count(Arc::as_ptr(&c)) };
            }
        }
    }

    fn snapshot(&self) -> Vec<Arc<ConnInner>> {
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.conns.iter().flatten().cloned().collect()
    }

    fn live(&self) -> usize {
        self.registry.lock().unwrap_or_else(|e| e.into_inner()).live
    }
}

/// The loops that ever served, for the goroutine dump's section (weak: a dropped loop goes).
static LOOPS: Mutex<Vec<std::sync::Weak<LoopShared>>> = Mutex::new(Vec::new());

/// Registers `lp` for the dump's section of reactor connections (and the section itself).
fn dump_section_add(lp: &Arc<LoopShared>) {
    crate::runtime::dump::set_section(dump_section);
    let mut loops = LOOPS.lock().unwrap_or_else(|e| e.into_inner());
    loops.retain(|w| w.strong_count() > 0);
    if !loops.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(lp))) {
        loops.push(Arc::downgrade(lp));
    }
}

/// The dump's lines for runtime `rt_id`: each reactor connection, which holds no goroutine
/// while idle — fd, peer, owner worker, whether a handler runs or waits on it, closing —
/// as Go lists a goroutine in `IO wait` (a handler parked in `next` also shows as a
/// goroutine in `IO wait` with the same fd). Only thread-safe fields are read.
fn dump_section(rt_id: u64) -> Vec<String> {
    let loops: Vec<Arc<LoopShared>> = {
        let l = LOOPS.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().filter_map(std::sync::Weak::upgrade).collect()
    };
    let mut lines = Vec::new();
    for lp in loops {
        let conns: Vec<Arc<ConnInner>> = lp
            .snapshot()
            .into_iter()
            .filter(|c| matches!(&c.io, Io::Server { rt_id: id, .. } if *id == rt_id))
            .collect();
        if conns.is_empty() {
            continue;
        }
        let addr = lp
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|(_, l)| l.local_addr().ok())
            .map_or_else(|| "(closed)".to_string(), |a| a.to_string());
        lines.push(format!("reactor event loop on {addr}: {} connections", conns.len()));
        for c in conns {
            lines.push(format!("\t{}", c.dump_line()));
        }
        lines.push(String::new());
    }
    lines
}

/// A multi-reactor server (netpoll's `EventLoop`): [`serve`](EventLoop::serve) accepts, each
/// connection is owned by one worker, and `on_request` runs on a pooled goroutine of that
/// worker whenever the connection has input — called again while input remains.
#[derive(Clone)]
pub struct EventLoop {
    shared: Arc<LoopShared>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").field("connections", &self.shared.live()).finish()
    }
}

impl EventLoop {
    /// A builder with the request handler.
    pub fn builder(
        on_request: impl Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
    ) -> Builder {
        Builder {
            on_request: Arc::new(on_request),
            on_prepare: None,
            on_connect: None,
            on_disconnect: None,
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            input_cap: DEFAULT_INPUT_CAP,
            output_cap: DEFAULT_OUTPUT_CAP,
            balance: Balance::default(),
            #[cfg(feature = "rustls")]
            tls: None,
            #[cfg(feature = "rustls")]
            handshake_timeout: super::tls::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.shared.live()
    }

    /// Accepts on `ln` until [`shutdown`](EventLoop::shutdown), blocking the calling
    /// goroutine; called on a plain thread, it starts a runtime (configured from the
    /// environment, see [`crate::Builder::new`]) and blocks the thread. `EMFILE`/`ENFILE`
    /// back off (5 ms doubling to 1 s) without spinning.
    pub fn serve(&self, ln: TcpListener) -> io::Result<()> {
        if !worker::in_goroutine() {
            let me = self.clone();
            let rt = crate::Builder::new().build()?;
            return match rt.try_run(move || me.serve(ln))? {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            };
        }
        super::install_hooks();
        dump_section_add(&self.shared);
        let ln = Arc::new(ln);
        let rt_id = worker::current().map_or(0, |w| w.shared.rt_id);
        *self.shared.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some((rt_id, ln.clone()));
        // A runtime that ends without `shutdown` (its main goroutine returned) must still
        // close this loop's connections on it: nothing else will (see `LoopShared::reap`).
        let weak = Arc::downgrade(&self.shared);
        crate::runtime::at_exit(move || {
            if let Some(sh) = weak.upgrade() {
                sh.reap(rt_id);
            }
        });
        if self.shared.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        let addr = ln.local_addr().ok();
        let mut backoff = Duration::from_millis(5);
        loop {
            match ln.accept() {
                Ok((s, peer)) => {
                    backoff = Duration::from_millis(5);
                    if let Err(e) = self.register(s, peer) {
                        super::conn::report(&format!(
                            "gonet reactor: connection from {peer} to {addr:?} closed before \
                             it was served: {e}"
                        ));
                    }
                }
                Err(e) if is_closed(&e) || self.shared.stopping.load(Ordering::Acquire) => {
                    // Under `shutdown`, stay until it has finished with the connections: the
                    // caller is often the main goroutine, whose return ends the runtime.
                    while self.shared.stopping.load(Ordering::Acquire)
                        && !self.shared.stopped.load(Ordering::Acquire)
                    {
                        crate::time::sleep(Duration::from_millis(2));
                    }
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        crate::net::raw_os_error(&e),
                        Some(libc::EMFILE | libc::ENFILE)
                    ) =>
                {
                    super::conn::report(&format!(
                        "gonet reactor: accept on {addr:?}: {e}; retrying in {backoff:?}"
                    ));
                    crate::time::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    super::conn::report(&format!("gonet reactor: accept on {addr:?}: {e}"));
                    crate::time::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn register(&self, s: crate::net::TcpStream, peer: SocketAddr) -> io::Result<()> {
        let w = worker::current().expect("serve runs on a goroutine");
        let workers = &w.rt.workers;
        let sh = &self.shared;
        let _ = s.set_nodelay(true);
        let fd = s.into_raw_fd();
        let owner = sh.pick(workers.len());
        let wk = &workers[owner];
        let sock = Sock::new(fd);
        #[allow(unused_mut)]
        let mut inner = ConnInner::new(
            Io::Server {
                sock,
                owner,
                worker: Arc::downgrade(wk),
                epfd: wk.poller.raw(),
                rt_id: wk.rt_id,
                lp: sh.clone(),
            },
            Some(peer),
            sh.input_cap,
            sh.output_cap,
        );
        #[cfg(feature = "rustls")]
        if let Some(cfg) = &sh.tls {
            let t = super::tls::Tls::new(cfg.clone(), sh.handshake_timeout)?;
            inner.tls = Some(Box::new(t));
        }
        let inner = Arc::new(inner);
        let mut owner_box = ConnBox::new(inner.clone());
        let conn: &mut Connection = owner_box.conn();
        conn.set_read_timeout(sh.read_timeout);
        conn.set_write_timeout(sh.write_timeout);
        conn.set_idle_timeout(sh.idle_timeout);
        if let Some(p) = &sh.on_prepare {
            // A panic is caught like any hook's (the connection is then dropped: closed).
            if let Err(e) = call(conn, p, "on_prepare") {
                return Err(io::Error::new(e.kind(), format!("on_prepare: {e}")));
            }
        }
        if !inner.is_active() {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed in on_prepare"));
        }
        drop(owner_box);
        {
            let mut r = sh.registry.lock().unwrap_or_else(|e| e.into_inner());
            let slot = match r.free.pop() {
                Some(i) => {
                    r.conns[i] = Some(inner.clone());
                    i
                }
                None => {
                    r.conns.push(Some(inner.clone()));
                    r.conns.len() - 1
                }
            };
            r.live += 1;
            inner.slot.set(slot);
        }
        sh.add(owner, workers);
        let p = Arc::into_raw(inner.clone()) as u64;
        debug_assert!(p & EVENT_TAG == 0);
        inner.registered.store(true, Ordering::Release);
        // From here on the connection belongs to worker `owner` (trigger.rs invariant 1):
        // the registration reports EPOLLOUT at once, so its handler goroutine starts there.
        if let Err(e) = wk.poller.register(fd, p | EVENT_TAG) {
            inner.registered.store(false, Ordering::Release);
            // SAFETY: undoes the `into_raw` just above; the registration failed.
            unsafe { Arc::decrement_strong_count(p as *const ConnInner) };
            sh.remove(&inner, owner);
            return Err(e);
        }
        Ok(())
    }

    /// Stops accepting, closes idle connections, and waits for busy ones (a handler running
    /// or waiting for input) to finish until `deadline`; then closes those too and fails with
    /// `TimedOut`, saying how many were still busy. Callable from any goroutine or thread.
    pub fn shutdown(&self, deadline: Instant) -> io::Result<()> {
        let r = self.drain(deadline);
        self.shared.stopped.store(true, Ordering::Release);
        r
    }

    fn drain(&self, deadline: Instant) -> io::Result<()> {
        let sh = &self.shared;
        sh.stopping.store(true, Ordering::Release);
        if let Some((_, ln)) = sh.listener.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = ln.close();
        }
        loop {
            let conns = sh.snapshot();
            if conns.is_empty() {
                return Ok(());
            }
            let mut busy = 0;
            for c in &conns {
                if c.busy.load(Ordering::Relaxed) {
                    busy += 1;
                } else {
                    c.close();
                }
            }
            if Instant::now() >= deadline {
                for c in &conns {
                    c.close();
                }
                drop(conns);
                // Handlers waiting for input wake with a "closed" error and finalize; give
                // them a moment before serve returns (and maybe the runtime with it).
                let grace = Instant::now() + Duration::from_millis(100);
                while sh.live() > 0 && Instant::now() < grace {
                    crate::time::sleep(Duration::from_millis(2));
                }
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "gonet reactor: shutdown deadline passed with {busy} connections still busy"
                    ),
                ));
            }
            drop(conns);
            crate::time::sleep(Duration::from_millis(2));
        }
    }
}
