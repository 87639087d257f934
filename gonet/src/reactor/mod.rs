//! The netpoll-style reactor. (Temporary module file of the buffer branch: the reactor branch's
//! version replaces it on merge.)

mod buffer;
pub use buffer::*;
