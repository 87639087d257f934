//! The reactor's byte buffers: [`LinkBuffer`], a queue of reference-counted blocks from
//! size-classed per-thread pools (block.rs, pool.rs), with netpoll's nocopy reader (reader.rs)
//! and writer (writer.rs) operations and the socket side (socket.rs); and [`RecvBuf`]
//! (recv_buf.rs), one pooled block read into and drained from the front, for TLS ciphertext.

mod block;
mod link_buffer;
mod pool;
mod reader;
#[cfg(feature = "rustls")]
mod recv_buf;
mod socket;
mod writer;

pub use link_buffer::LinkBuffer;
pub use pool::{buffer_stats, BufferStats, MAX_MALLOC, MIN_BLOCK};
#[cfg(feature = "rustls")]
pub(crate) use recv_buf::RecvBuf;
pub use socket::BOOK_BLOCK;
