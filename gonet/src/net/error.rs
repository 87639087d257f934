//! Errors that say what failed where: [`OpError`], Go's `*net.OpError`.
//!
//! Dial, listen, bind and accept failures come back as an `io::Error` whose kind is the kind
//! of the underlying error and whose payload is an [`OpError`] naming the operation, the
//! network and the address, plus the system call that failed:
//!
//! ```text
//! dial tcp 127.0.0.1:38133: connect: connection refused
//! listen tcp 127.0.0.1:9008: bind: address already in use
//! accept tcp 127.0.0.1:9008: accept4: too many open files
//! ```
//!
//! The OS error stays reachable: [`raw_os_error`] looks through the wrapper, and
//! `std::error::Error::source` returns the underlying `io::Error`. Reads and writes are not
//! wrapped: their errors are the OS error itself, built without allocation, as before.

use std::fmt;
use std::io;

/// An operation's error with its context (Go's `net.OpError`): `"{op} {net} {addr}:
/// {syscall}: {error}"`. Reach it with `io::Error::get_ref()` and `downcast_ref`.
#[derive(Debug)]
pub struct OpError {
    op: &'static str,
    net: &'static str,
    addr: Option<String>,
    syscall: Option<&'static str>,
    err: io::Error,
}

impl OpError {
    /// The operation: `"dial"`, `"listen"`, `"accept"`.
    pub fn op(&self) -> &str {
        self.op
    }
    /// The network: `"tcp"`, `"udp"`, `"unix"`.
    pub fn net(&self) -> &str {
        self.net
    }
    /// The address the operation was about (the remote one for dial, the local one for
    /// listen and accept), if known.
    pub fn addr(&self) -> Option<&str> {
        self.addr.as_deref()
    }
    /// The system call that failed (`"connect"`, `"bind"`, `"accept4"`), for OS errors.
    pub fn syscall(&self) -> Option<&str> {
        self.syscall
    }
    /// The underlying error.
    pub fn error(&self) -> &io::Error {
        &self.err
    }
    /// Takes the underlying error out.
    pub fn into_error(self) -> io::Error {
        self.err
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.net)?;
        if let Some(a) = &self.addr {
            write!(f, " {a}")?;
        }
        f.write_str(": ")?;
        if let Some(s) = self.syscall {
            write!(f, "{s}: ")?;
        }
        match self.err.raw_os_error() {
            Some(code) => f.write_str(&os_message(code)),
            None => write!(f, "{}", self.err),
        }
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.err)
    }
}

/// The OS's text for `code` in Go's style: `"connection refused"` (no capital, no
/// `" (os error 111)"`).
fn os_message(code: i32) -> String {
    let s = io::Error::from_raw_os_error(code).to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) => &s[..i],
        None => &s[..],
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The OS error number of `err`, looking through an [`OpError`]: what
/// `io::Error::raw_os_error` gives for an unwrapped error.
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| op_error(err).and_then(|o| o.err.raw_os_error()))
}

/// The [`OpError`] inside `err`, if it carries one.
pub fn op_error(err: &io::Error) -> Option<&OpError> {
    err.get_ref().and_then(|e| e.downcast_ref::<OpError>())
}

/// A step's failure before the context is known: the system call that failed (for OS errors)
/// and the error.
pub(crate) struct Fail {
    pub(crate) syscall: Option<&'static str>,
    pub(crate) err: io::Error,
}

impl From<io::Error> for Fail {
    fn from(err: io::Error) -> Fail {
        Fail { syscall: None, err }
    }
}

impl Fail {
    /// Wraps the failure into an `io::Error` carrying an [`OpError`].
    pub(crate) fn op(self, op: &'static str, net: &'static str, addr: Option<String>) -> io::Error {
        wrap(op, net, addr, self.syscall, self.err)
    }
}

/// Names the system call of an OS error (other errors — a timeout, a close — have none).
pub(crate) trait Syscall<T> {
    fn sys(self, name: &'static str) -> Result<T, Fail>;
}

impl<T> Syscall<T> for io::Result<T> {
    fn sys(self, name: &'static str) -> Result<T, Fail> {
        self.map_err(|err| {
            let syscall = err.raw_os_error().map(|_| name);
            Fail { syscall, err }
        })
    }
}

/// An `io::Error` of the same kind as `err`, carrying an [`OpError`]. An error that already
/// carries one is returned as it is.
pub(crate) fn wrap(
    op: &'static str,
    net: &'static str,
    addr: Option<String>,
    syscall: Option<&'static str>,
    err: io::Error,
) -> io::Error {
    if op_error(&err).is_some() {
        return err;
    }
    io::Error::new(err.kind(), OpError { op, net, addr, syscall, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_text_and_reachable_os_error() {
        let e = Fail { syscall: Some("connect"), err: io::Error::from_raw_os_error(111) }.op(
            "dial",
            "tcp",
            Some("127.0.0.1:38133".into()),
        );
        assert_eq!(e.to_string(), "dial tcp 127.0.0.1:38133: connect: connection refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(raw_os_error(&e), Some(111));
        let src = std::error::Error::source(&e).expect("source");
        let inner = src.downcast_ref::<io::Error>().expect("io::Error source");
        assert_eq!(inner.raw_os_error(), Some(111));
        // Wrapping twice keeps the first context.
        let again = wrap("accept", "tcp", None, None, e);
        assert_eq!(again.to_string(), "dial tcp 127.0.0.1:38133: connect: connection refused");
    }
}
