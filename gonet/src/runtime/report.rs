//! Reports that reach the user without setup: where stall and deadlock warnings go, the names
//! of named goroutines (for reports made on other threads), the panic hook that names the
//! goroutine, what SIGQUIT and a deadlock do ([`Traceback`], [`Deadlock`]: by default print
//! and exit 2, as Go does), and the fatal exit.
//!
//! Routing ([`Reports`]): by default a report goes to the `log` crate when a logger takes
//! warnings, else to stderr, so a program without a logger still sees it; `Log` sends it to
//! `log` only and `Off` drops it (`Builder::reports`, `GONET_REPORTS=off|log|stderr`).

use std::collections::HashMap;
use std::panic::{self, Location};
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
        env_choice(
            "GONET_REPORTS",
            &[
                ("", Reports::Auto),
                ("auto", Reports::Auto),
                ("log", Reports::Log),
                ("stderr", Reports::Stderr),
                ("off", Reports::Off),
                ("0", Reports::Off),
            ],
            "off, log, stderr, auto",
        )
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

/// What `SIGQUIT` (`kill -QUIT`, Ctrl-\\) does to a process running a runtime
/// (`Builder::traceback_mode`, `GONET_TRACEBACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Traceback {
    /// Go's behaviour: print every goroutine of every running runtime (the dump) to stderr
    /// and exit with status 2. `GONET_TRACEBACK` unset, `exit` or `all`.
    #[default]
    Exit,
    /// Print the dump and run on (a live look at a running service). `GONET_TRACEBACK=1` or
    /// `continue`; `Builder::traceback(true)`.
    Continue,
    /// Leave `SIGQUIT` alone: its default action ends the process with a core dump (status
    /// 131 from a shell). `GONET_TRACEBACK=0`, `off` or `none`; `Builder::traceback(false)`.
    Off,
}

impl Traceback {
    /// From `GONET_TRACEBACK`.
    pub(crate) fn from_env() -> std::io::Result<Traceback> {
        env_choice(
            "GONET_TRACEBACK",
            &[
                ("", Traceback::Exit),
                ("exit", Traceback::Exit),
                ("all", Traceback::Exit),
                ("1", Traceback::Continue),
                ("continue", Traceback::Continue),
                ("0", Traceback::Off),
                ("off", Traceback::Off),
                ("none", Traceback::Off),
            ],
            "exit (the default: dump and exit 2), 1 or continue (dump and run on), \
             0 or off (SIGQUIT's default action)",
        )
    }
}

/// What the runtime does once every goroutine waits on another with nothing pending that
/// could wake one (`all goroutines are asleep - deadlock!`; `Builder::deadlock`,
/// `GONET_DEADLOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deadlock {
    /// Go's behaviour: print the message and the dump to stderr and exit with status 2.
    /// `GONET_DEADLOCK` unset or `exit`.
    #[default]
    Exit,
    /// Report it (through [`Reports`], once per quiet spell) and run on: for programs in
    /// which a plain OS thread may still complete a goroutine's wait after a second of
    /// quiet. `GONET_DEADLOCK=warn`.
    Warn,
}

impl Deadlock {
    /// From `GONET_DEADLOCK`.
    pub(crate) fn from_env() -> std::io::Result<Deadlock> {
        env_choice(
            "GONET_DEADLOCK",
            &[("", Deadlock::Exit), ("exit", Deadlock::Exit), ("warn", Deadlock::Warn)],
            "exit, warn",
        )
    }
}

/// The value of the environment variable `var` looked up in `table` (the first entry is the
/// default, for an unset variable); an unknown value is an `InvalidInput` error naming `help`.
fn env_choice<T: Copy>(var: &str, table: &[(&str, T)], help: &str) -> std::io::Result<T> {
    let Ok(v) = std::env::var(var) else { return Ok(table[0].1) };
    match table.iter().find(|(k, _)| *k == v.trim()) {
        Some((_, t)) => Ok(*t),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("gonet: {var}={v:?} is not one of {help}"),
        )),
    }
}

/// Prints a fatal report to stderr (whatever [`Reports`] says: the process is about to end
/// and must say why) and exits with status 2, as Go's fatal errors do. One at a time: a
/// second caller (another runtime's watchdog) waits for the process to end.
pub(crate) fn fatal(msg: &str) -> ! {
    static EXITING: Mutex<()> = Mutex::new(());
    let _once = EXITING.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("{msg}");
    std::process::exit(2)
}
