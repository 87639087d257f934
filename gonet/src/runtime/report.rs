//! Reports that reach the user without setup: where stall and deadlock warnings go, the names
//! of named goroutines (for reports made on other threads), the panic hook that names the
//! goroutine, and SIGQUIT (Go's traceback on `kill -QUIT`).
//!
//! Routing ([`Reports`]): by default a report goes to the `log` crate when a logger takes
//! warnings, else to stderr, so a program without a logger still sees it; `Log` sends it to
//! `log` only and `Off` drops it (`Builder::reports`, `GONET_REPORTS=off|log|stderr`).

use std::collections::HashMap;
use std::panic::{self, Location};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use super::worker;

/// Where the runtime's warnings go (stalls, possible deadlocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reports {
    /// To the `log` crate when a logger is installed for warnings, else to stderr.
    #[default]
    Auto,
    /// To the `log` crate only (dropped when no logger is installed).
    Log,
    /// Always to stderr.
    Stderr,
    /// Nowhere.
    Off,
}

impl Reports {
    /// From `GONET_REPORTS` (`off`, `log`, `stderr`); unset means [`Reports::Auto`].
    pub(crate) fn from_env() -> std::io::Result<Reports> {
        match std::env::var("GONET_REPORTS") {
            Err(_) => Ok(Reports::Auto),
            Ok(v) => match v.trim() {
                "" | "auto" => Ok(Reports::Auto),
                "log" => Ok(Reports::Log),
                "stderr" => Ok(Reports::Stderr),
                "off" | "0" => Ok(Reports::Off),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("gonet: GONET_REPORTS={v:?} is not one of off, log, stderr, auto"),
                )),
            },
        }
    }

    /// Emits one warning.
    pub(crate) fn warn(self, msg: &str) {
        let to_log = match self {
            Reports::Off => return,
            Reports::Log => true,
            Reports::Stderr => false,
            Reports::Auto => log::max_level() >= log::LevelFilter::Warn,
        };
        if to_log {
            log::warn!("{msg}");
        } else {
            eprintln!("{msg}");
        }
    }
}

/// Names of the named goroutines that are alive, by id.
static NAMES: Mutex<Option<HashMap<u64, Arc<str>>>> = Mutex::new(None);

pub(crate) fn remember_name(id: u64, name: Arc<str>) {
    NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(id, name);
}

pub(crate) fn forget_name(id: u64) {
    if let Some(m) = NAMES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        m.remove(&id);
    }
}

/// `goroutine 7 "name" (created at src/main.rs:12)`, for messages.
pub(crate) fn who(id: u64, site: Option<&'static Location<'static>>) -> String {
    let name =
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(&id).cloned());
    let mut s = format!("goroutine {id}");
    if let Some(n) = name {
        s += &format!(" {n:?}");
    }
    if let Some(l) = site {
        s += &format!(" (created at {}:{})", l.file(), l.line());
    }
    s
}

/// Installs (once per process) the runtime's panic hook: it first names the panicking
/// goroutine, then hands over to the hook that was there (which prints the message and
/// location), then names a goroutine whose forced unwind at shutdown panicked
/// (`contain::note_if_unwinding`).
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    if std::thread::panicking() {
        return; // `take_hook` may not be called while panicking; a later run installs it
    }
    ONCE.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(ctx) = super::contain::context() {
                eprintln!("gonet: {ctx}");
            } else if let Some(g) = worker::current_g() {
                if !worker::shutting_down() {
                    eprintln!(
                        "gonet: {} panicked; its JoinHandle::join returns the payload",
                        who(g.id, Some(g.meta.site))
                    );
                }
            }
            prev(info);
            super::contain::note_if_unwinding();
        }));
    });
}

/// Counts SIGQUITs; each watchdog prints a dump when it sees the count change.
pub(crate) static SIGQUITS: AtomicU64 = AtomicU64::new(0);

/// Makes SIGQUIT count in [`SIGQUITS`] instead of killing the process (once per process).
pub(crate) fn install_sigquit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        extern "C" fn on_quit(_: libc::c_int) {
            // Async-signal-safe: one atomic add; the watchdog does the rest.
            SIGQUITS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: installs a handler that only performs an atomic add.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_quit as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGQUIT, &sa, std::ptr::null_mut());
        }
    });
}
