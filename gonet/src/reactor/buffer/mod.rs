//! The reactor's byte buffers: [`LinkBuffer`], a queue of reference-counted blocks from
//! size-classed per-thread pools (block.rs, pool.rs), with netpoll's nocopy reader (reader.rs)
//! and writer (writer.rs) operations and the socket side (socket.rs).

mod block;
mod link_buffer;
mod pool;
mod reader;
mod socket;
mod writer;

pub use link_buffer::LinkBuffer;
pub use pool::{buffer_stats, BufferStats, MAX_MALLOC, MIN_BLOCK};
pub use socket::BOOK_BLOCK;
