//! `LinkBuffer`: a byte queue over a list of reference-counted blocks — the type, its state,
//! its invariants, and `release`. The operations live beside it: reader.rs (consume from the
//! front), writer.rs (append at the back), socket.rs (book/fill for read(2), io_slices for
//! sendmsg).
//!
//! # State
//!
//! `nodes` is a deque of views `(block, start..end)`. Reading the nodes in order from `head`
//! gives the stream: first `len` readable bytes, then `mlen` unflushed bytes (written or
//! malloc'd, readable after `flush`). Nodes before `head` are consumed; reading advances
//! `start` of the node it reads and moves `head` over emptied nodes (never past the last node).
//! When `tail` is set, the buffer owns the free tail of the last node's block: bytes
//! `res..cap` of it are unused and only this buffer may hand them out; `res` (the reservation
//! front) only grows under `&self`.
//!
//! # Invariants (who may touch which byte, when a block may be reused)
//!
//! 1. A byte that is readable, unflushed or consumed-but-not-released is never written again by
//!    anyone: appends only write at or after `res` of an owned tail, and `res` only grows while
//!    any borrow of the buffer may be alive. So slices returned by `next`/`peek`/`until`/
//!    `io_slices` (`&[u8]` tied to `&self`) see immutable bytes until `release(&mut self)`.
//! 2. A writable range handed out under `&self` (`malloc`, `book`: `&mut [u8]` tied to `&self`)
//!    lies in `[old res, new res)` of an owned tail, so it overlaps no other handed-out range
//!    and no readable byte. It becomes readable only through `flush`, `book_ack`, `malloc_ack`
//!    — all `&mut self`, so the `&mut [u8]` is dead by then. `fill` hands its range to a
//!    closure only, and commits it after the closure returned.
//! 3. At most one buffer owns a block's tail. `slice` makes buffers without a tail, and
//!    external blocks (`write_direct`) have none; `append` moves the tail with the nodes.
//!    So two holders of one block (a buffer and its slice, possibly on two threads) touch
//!    disjoint byte ranges, and the only shared mutable datum is the atomic reference count.
//! 4. A node (and so its block reference) is dropped only under `&mut self` (`release`,
//!    `malloc_ack`, `book_ack`, drop) — when no slice of it can be alive — or, under `&self`,
//!    when it never held a readable byte (`fill` giving back a block it booked for nothing).
//!    The block is reused (pool.rs) only after its last reference, in any buffer, is dropped.
//! 5. `scratch` holds the copies `next`/`peek` make when the bytes span blocks; they live until
//!    `release`, like the slices into them.
//! 6. An empty buffer (`len == 0 && mlen == 0`) after `release`, `book_ack` or a `fill` that
//!    got no bytes holds no block: an idle connection costs no block.
//!
//! `LinkBuffer` is `Send` (its blocks are) and `!Sync` (`UnsafeCell`): the state is touched by
//! one thread at a time, which is what lets `&self` methods mutate it. No method holds the
//! state borrowed while running caller code (the `fill` closure, the `Drop` of caller data).

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;

use super::block::Block;

/// Node capacity an empty, released buffer keeps (more is given back).
const SHRINK_ABOVE: usize = 16;

thread_local! {
    /// One empty node deque per thread, kept for the next `slice`: a handler that slices a
    /// message and appends it to the output (an echo, a proxy) makes and drops one buffer per
    /// request, and this spares it the deque's allocation and free.
    static SPARE_NODES: Cell<Option<VecDeque<Node>>> = const { Cell::new(None) };
}

/// An empty node deque: this thread's spare if it has one.
pub(super) fn spare_nodes() -> VecDeque<Node> {
    SPARE_NODES.try_with(Cell::take).ok().flatten().unwrap_or_default()
}

/// Drops `nodes`' nodes (caller code may run: no buffer state may be borrowed) and keeps the
/// deque as this thread's spare if it is small.
pub(super) fn recycle_nodes(mut nodes: VecDeque<Node>) {
    clear(&mut nodes);
    if nodes.capacity() != 0 && nodes.capacity() <= SHRINK_ABOVE {
        let _ = SPARE_NODES.try_with(|s| s.set(Some(nodes)));
    }
}

/// Drops every node of `nodes`, front first, keeping its capacity. `VecDeque::clear` does the
/// same through its general truncation (both halves of the ring, a drop guard), which costs
/// more than the one or two nodes a released buffer usually holds. A node's drop may run
/// caller code that panics: the nodes after it then stay in the deque, owned and intact.
#[inline]
fn clear(nodes: &mut VecDeque<Node>) {
    while let Some(node) = nodes.pop_front() {
        drop(node);
    }
}

/// A view of bytes `start..end` of a block.
pub(super) struct Node {
    pub(super) block: Block,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Node {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }
}

/// An outstanding `book`: bytes `off..off + len` of the block with identity `id`.
#[derive(Clone, Copy)]
pub(super) struct Booking {
    pub(super) id: usize,
    pub(super) off: usize,
    pub(super) len: usize,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) nodes: VecDeque<Node>,
    pub(super) head: usize,
    pub(super) len: usize,
    pub(super) mlen: usize,
    pub(super) tail: bool,
    pub(super) res: usize,
    pub(super) booking: Option<Booking>,
    pub(super) scratch: Vec<Block>,
    /// Bytes consumed and scratch bytes copied since the last `release`: memory this buffer
    /// still holds for slices that may be alive (`held`). A `u32` (saturating) packs beside
    /// `tail`, so an idle buffer stays at 128 bytes.
    pub(super) held: u32,
    /// A node may hold caller data (`write_direct`, or `append` of a buffer that may): its
    /// `Drop` runs when the node goes. Cleared when the buffer empties.
    pub(super) user_data: bool,
}

/// A byte queue made of a linked list of reference-counted blocks from per-thread pools, the
/// input and output buffer of a reactor connection (CloudWeGo netpoll's nocopy `LinkBuffer`).
///
/// Reading takes `&self` and returns slices that borrow the buffer until [`release`], so a
/// slice can never outlive the bytes it shows:
///
/// ```compile_fail,E0502
/// use gonet::reactor::LinkBuffer;
/// let mut b = LinkBuffer::new();
/// b.write_binary(b"hello").unwrap();
/// b.flush();
/// let s = b.next(5).unwrap();
/// b.release(); // error: `b` is still borrowed by `s`
/// assert_eq!(s, b"hello");
/// ```
///
/// and a `malloc`'d range cannot be written after it became readable:
///
/// ```compile_fail,E0502
/// use gonet::reactor::LinkBuffer;
/// let mut b = LinkBuffer::new();
/// let w = b.malloc(1).unwrap();
/// b.flush(); // error: `b` is still borrowed by `w`
/// w[0] = 1;
/// ```
///
/// Appending takes `&self` too and never moves a readable or handed-out byte, so a producer
/// can append while a consumer holds slices. `slice(n)` shares blocks (no copy) and gives a
/// `Send` buffer. The buffer itself is not `Sync`:
///
/// ```compile_fail,E0277
/// fn sync<T: Sync>() {}
/// sync::<gonet::reactor::LinkBuffer>();
/// ```
///
/// ```
/// use gonet::reactor::LinkBuffer;
/// let mut b = LinkBuffer::new();
/// b.write_binary(b"GET / HTTP/1.1\r\n").unwrap();
/// b.flush();
/// let line = b.until(b'\n').unwrap();
/// assert_eq!(line, b"GET / HTTP/1.1\r\n");
/// b.release();
/// assert!(b.is_empty());
/// ```
///
/// [`release`]: LinkBuffer::release
pub struct LinkBuffer {
    st: UnsafeCell<State>,
}

impl LinkBuffer {
    /// An empty buffer; it holds no block until bytes are appended.
    #[inline]
    pub fn new() -> LinkBuffer {
        LinkBuffer { st: UnsafeCell::new(State::default()) }
    }

    #[inline]
    pub(super) fn from_state(st: State) -> LinkBuffer {
        LinkBuffer { st: UnsafeCell::new(st) }
    }

    #[inline]
    pub(super) fn into_state(self) -> State {
        self.st.into_inner()
    }

    /// The state, for one method's body.
    ///
    /// # Safety
    /// The caller holds the result only within its method, does not call another method of
    /// this buffer (nor caller code that could) while holding it. `!Sync` makes the access
    /// single-threaded; this rule makes it exclusive.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn st(&self) -> &mut State {
        // SAFETY: exclusive per the contract above.
        unsafe { &mut *self.st.get() }
    }

    #[inline]
    pub(super) fn st_mut(&mut self) -> &mut State {
        self.st.get_mut()
    }

    #[inline]
    fn st_ref(&self) -> &State {
        // SAFETY: a short read of plain fields; no `&mut State` is alive outside a method body.
        unsafe { &*self.st.get() }
    }

    /// Readable bytes: flushed and not yet consumed.
    #[inline]
    pub fn len(&self) -> usize {
        self.st_ref().len
    }

    /// Whether no byte is readable.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes written or malloc'd and not yet flushed.
    #[inline]
    pub fn malloc_len(&self) -> usize {
        self.st_ref().mlen
    }

    /// Bytes the buffer keeps only for slices that may still be alive: consumed bytes and
    /// scratch copies since the last [`release`](LinkBuffer::release), which frees them.
    /// A reader bounding its memory counts these beside [`len`](LinkBuffer::len).
    #[inline]
    pub fn held(&self) -> usize {
        self.st_ref().held as usize
    }

    /// Whether releasing may drop caller data (`write_direct` values, with their `Drop`):
    /// a caller that must contain such drops needs to only when this is true.
    #[inline]
    pub(crate) fn may_drop_user_data(&self) -> bool {
        self.st_ref().user_data
    }

    /// Frees what was consumed: fully consumed blocks go back to the pool (when this was their
    /// last holder), scratch copies are dropped, an outstanding `book` is cancelled, and an
    /// empty buffer gives up every block.
    #[inline]
    pub fn release(&mut self) {
        self.st_mut().release();
    }
}

impl State {
    /// Moves `head` over emptied nodes, never past the last node.
    #[inline]
    pub(super) fn front(&mut self) {
        while self.head + 1 < self.nodes.len() && self.nodes[self.head].len() == 0 {
            self.head += 1;
        }
    }

    /// `release` (`&mut self`: no slice, scratch or handed-out range is alive).
    #[inline]
    pub(super) fn release(&mut self) {
        self.held = 0;
        if self.nodes.is_empty() && self.scratch.is_empty() && self.booking.is_none() {
            // Holds nothing: every byte and every byte of room lies in a node, so no node
            // means `len == mlen == 0` and nothing to give back. This is an already released
            // buffer, which the handler loop releases again at each of its steps.
            self.head = 0;
            self.tail = false;
            self.res = 0;
            self.user_data = false;
            return;
        }
        self.release_held();
    }

    /// `release` of a buffer that holds nodes, scratch copies or a booking (out of line: the
    /// check above is all most calls need).
    #[inline(never)]
    fn release_held(&mut self) {
        self.scratch.clear();
        self.booking = None;
        if self.len == 0 && self.mlen == 0 {
            // Nodes first, then the mark: a caller's `Drop` that panics leaves the nodes after
            // it in the deque, still marked as maybe holding caller data (so their drop is
            // contained too).
            clear(&mut self.nodes);
            self.user_data = false;
            if self.nodes.capacity() > SHRINK_ABOVE {
                // A burst once needed many nodes; an idle buffer should not keep the room.
                self.nodes = VecDeque::new();
                self.scratch = Vec::new();
            }
            self.head = 0;
            self.tail = false;
            self.res = 0;
            return;
        }
        self.front();
        if self.head > 0 {
            self.nodes.drain(..self.head);
            self.head = 0;
        }
        if self.tail {
            // Give back space an acked or cancelled booking left behind.
            self.res = self.nodes.back().map_or(0, |n| n.end);
        }
    }
}

impl Default for LinkBuffer {
    fn default() -> LinkBuffer {
        LinkBuffer::new()
    }
}

impl fmt::Debug for LinkBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkBuffer")
            .field("len", &self.len())
            .field("malloc_len", &self.malloc_len())
            .finish()
    }
}
