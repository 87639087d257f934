//! gonet: Go's network programming model in Rust.
//!
//! Code is written in the plain blocking style — `listener.accept()`, `conn.read(&mut buf)`,
//! `conn.write_all(..)`, one goroutine per connection — and the runtime turns every
//! would-block into a park of a stackful goroutine on a per-worker epoll netpoller.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! gonet::run(|| {
//!     let ln = gonet::net::TcpListener::bind("127.0.0.1:9008").unwrap();
//!     loop {
//!         let (mut conn, _) = ln.accept().unwrap();
//!         gonet::go(move || {
//!             let mut buf = [0u8; 4096];
//!             while let Ok(n @ 1..) = conn.read(&mut buf) {
//!                 if conn.write_all(&buf[..n]).is_err() { break; }
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! The layers, bottom up: [`runtime`] (goroutines, stacks, scheduler, timers), the netpoller
//! (`netpoll`, crate-private), [`net`] (std-shaped sockets with Go's deadlines and close),
//! the goroutine-aware primitives [`chan`], [`sync`] and [`time`], Go's cancellation
//! toolbox: [`context`] and [`errgroup`], and, beside `net` on the same workers and
//! netpollers, [`reactor`] (CloudWeGo netpoll's event-loop model: `EventLoop`, nocopy
//! `Connection` over `LinkBuffer`). [`signal`] delivers signals on channels and contexts
//! (Go's `os/signal`), with a graceful-shutdown recipe.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod chan;
pub mod context;
pub mod errgroup;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod net;
mod netpoll;
pub mod reactor;
pub mod runtime;
pub mod signal;
pub mod sync;
mod sys;
pub mod time;

pub use runtime::{
    block_on, blocking, go, go_named, run, try_go, try_go_named, yield_now, Builder, JoinHandle,
    Runtime,
};
