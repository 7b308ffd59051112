//! The contents of wheel slots: FIFO lists of `(entry index, stamp)` items stored in fixed-size
//! chunks from one shared pool.
//!
//! Owns: the chunk pool (a `Vec` of 128-byte chunks plus a free list) and the per-list cursors
//! ([`ItemList`]). Promises: `push`, `pop_front` and `release` are O(1) and allocate only when
//! the pool has no free chunk (the pool never shrinks, so a pool grown to its high-water mark
//! never allocates again); list order is push order. Must not: interpret items (whether an item
//! is live or garbage is the wheel's call), or use `unsafe`.
//!
//! Why arrays of indices instead of intrusive links: a slot's items are contiguous, so walking a
//! slot (expiry, cascade, compaction) reads them sequentially and can issue the loads of the
//! entries they name together instead of one dependent miss after another; and cancelling a
//! timer never touches the list at all (it makes the item garbage by bumping the entry's stamp).

use super::slab::NIL;

/// Items per chunk: 15 items plus the `next` link fill two cache lines.
pub(crate) const CHUNK_ITEMS: usize = 15;

/// One scheduling of a timer in a slot: valid while the entry is live with this stamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) index: u32,
    pub(crate) stamp: u32,
}

#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Chunk {
    /// The next chunk of the same list (or of the free list), or `NIL`.
    next: u32,
    items: [Item; CHUNK_ITEMS],
}

/// A FIFO list of items: `head_pos..` of the head chunk, every full chunk in between, and
/// `..tail_len` of the tail chunk. Empty iff `head == NIL`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ItemList {
    head: u32,
    tail: u32,
    head_pos: u16,
    tail_len: u16,
}

impl ItemList {
    pub(crate) const EMPTY: ItemList = ItemList { head: NIL, tail: NIL, head_pos: 0, tail_len: 0 };

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// The shared pool of chunks.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    chunks: Vec<Chunk>,
    /// Head of the free list (through `Chunk::next`).
    free: u32,
}

impl ChunkPool {
    pub(crate) fn with_capacity(chunks: usize) -> Self {
        ChunkPool { chunks: Vec::with_capacity(chunks.min(NIL as usize)), free: NIL }
    }

    /// Chunks the pool can hold before it reallocates.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.capacity()
    }

    /// The address range of the reserved chunks, capacity included.
    pub(crate) fn region(&self) -> core::ops::Range<usize> {
        let start = self.chunks.as_ptr() as usize;
        start..start + self.chunks.capacity() * core::mem::size_of::<Chunk>()
    }

    /// Appends `item` to `list`.
    #[inline(always)]
    pub(crate) fn push(&mut self, list: &mut ItemList, item: Item) {
        if list.tail != NIL && usize::from(list.tail_len) < CHUNK_ITEMS {
            self.chunks[list.tail as usize].items[usize::from(list.tail_len)] = item;
            list.tail_len += 1;
            return;
        }
        let chunk = self.take_chunk();
        self.chunks[chunk as usize].items[0] = item;
        if list.tail == NIL {
            *list = ItemList { head: chunk, tail: chunk, head_pos: 0, tail_len: 1 };
        } else {
            self.chunks[list.tail as usize].next = chunk;
            list.tail = chunk;
            list.tail_len = 1;
        }
    }

    /// Removes and returns the first item of `list`, freeing its chunk once consumed.
    #[inline]
    pub(crate) fn pop_front(&mut self, list: &mut ItemList) -> Option<Item> {
        if list.head == NIL {
            return None;
        }
        let chunk = &self.chunks[list.head as usize];
        let item = chunk.items[usize::from(list.head_pos)];
        list.head_pos += 1;
        if list.head == list.tail {
            if list.head_pos == list.tail_len {
                self.release(list);
            }
        } else if usize::from(list.head_pos) == CHUNK_ITEMS {
            let next = chunk.next;
            self.give_chunk(list.head);
            list.head = next;
            list.head_pos = 0;
        }
        Some(item)
    }

    /// The item `ahead` places after the front of `list`, if it lies in the head chunk.
    #[inline]
    pub(crate) fn peek_ahead(&self, list: &ItemList, ahead: usize) -> Option<Item> {
        let pos = usize::from(list.head_pos) + ahead;
        let end = if list.head == list.tail { usize::from(list.tail_len) } else { CHUNK_ITEMS };
        if list.head == NIL || pos >= end {
            return None;
        }
        Some(self.chunks[list.head as usize].items[pos])
    }

    /// Moves the front chunk's remaining items of `list` into `out` (returning how many), and
    /// frees that chunk: the caller walks a detached list chunk by chunk, so the chunks it frees
    /// are the ones its own pushes reuse.
    #[inline]
    pub(crate) fn pop_chunk(&mut self, list: &mut ItemList, out: &mut [Item; CHUNK_ITEMS]) -> usize {
        if list.head == NIL {
            return 0;
        }
        let head = list.head;
        let end = if head == list.tail { usize::from(list.tail_len) } else { CHUNK_ITEMS };
        let start = usize::from(list.head_pos);
        let chunk = &self.chunks[head as usize];
        out[..end - start].copy_from_slice(&chunk.items[start..end]);
        let next = chunk.next;
        self.give_chunk(head);
        if head == list.tail {
            *list = ItemList::EMPTY;
        } else {
            list.head = next;
            list.head_pos = 0;
        }
        end - start
    }

    /// Keeps the items of `list` that `keep` selects, in order, packed from the front; frees the
    /// chunks left empty. `keep` gets each chunk's share of the items and returns a bitmask of
    /// the ones to keep. Returns how many were kept. Touches no other list.
    pub(crate) fn retain(&mut self, list: &mut ItemList, mut keep: impl FnMut(&[Item]) -> u32) -> u32 {
        if list.head == NIL {
            return 0;
        }
        // The write position never passes the read position, so packing in place is safe.
        let (mut write_chunk, mut write_pos, mut kept) = (list.head, 0, 0);
        let (mut read_chunk, mut read_start) = (list.head, usize::from(list.head_pos));
        loop {
            let read_end = if read_chunk == list.tail { usize::from(list.tail_len) } else { CHUNK_ITEMS };
            let items = self.chunks[read_chunk as usize].items;
            let mut mask = keep(&items[read_start..read_end]);
            while mask != 0 {
                let item = items[read_start + mask.trailing_zeros() as usize];
                mask &= mask - 1;
                if write_pos == CHUNK_ITEMS {
                    write_chunk = self.chunks[write_chunk as usize].next;
                    write_pos = 0;
                }
                self.chunks[write_chunk as usize].items[write_pos] = item;
                write_pos += 1;
                kept += 1;
            }
            if read_chunk == list.tail {
                break;
            }
            read_chunk = self.chunks[read_chunk as usize].next;
            read_start = 0;
        }
        if kept == 0 {
            self.release(list);
            return 0;
        }
        if write_chunk != list.tail {
            let first_unused = self.chunks[write_chunk as usize].next;
            self.chunks[list.tail as usize].next = self.free;
            self.free = first_unused;
        }
        *list = ItemList { head: list.head, tail: write_chunk, head_pos: 0, tail_len: write_pos as u16 };
        kept
    }

    /// Calls `f` with each chunk's share of `list`'s items, front to back.
    pub(crate) fn for_each(&self, list: &ItemList, mut f: impl FnMut(&[Item])) {
        let mut chunk = list.head;
        let mut start = usize::from(list.head_pos);
        while let Some(c) = self.chunks.get(chunk as usize) {
            let end = if chunk == list.tail { usize::from(list.tail_len) } else { CHUNK_ITEMS };
            f(&c.items[start..end]);
            if chunk == list.tail {
                break;
            }
            chunk = c.next;
            start = 0;
        }
    }

    /// Frees every chunk of `list` at once (its items are dropped unread) and empties it.
    #[inline]
    pub(crate) fn release(&mut self, list: &mut ItemList) {
        if list.head != NIL {
            self.chunks[list.tail as usize].next = self.free;
            self.free = list.head;
            *list = ItemList::EMPTY;
        }
    }

    /// Forgets every chunk (keeping the allocation); every list must be reset too.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.free = NIL;
    }

    #[inline]
    fn take_chunk(&mut self) -> u32 {
        if let Some(chunk) = self.chunks.get(self.free as usize) {
            let index = self.free;
            self.free = chunk.next;
            return index;
        }
        let index =
            u32::try_from(self.chunks.len()).ok().filter(|&i| i != NIL).expect("timer chunk pool full");
        self.chunks.push(Chunk { next: NIL, items: [Item::default(); CHUNK_ITEMS] });
        index
    }

    #[inline]
    fn give_chunk(&mut self, chunk: u32) {
        self.chunks[chunk as usize].next = self.free;
        self.free = chunk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: u32) -> Item {
        Item { index, stamp: index * 3 }
    }

    #[test]
    fn a_chunk_is_two_cache_lines() {
        assert_eq!(core::mem::size_of::<Chunk>(), 128);
    }

    #[test]
    fn fifo_across_chunks_and_chunks_are_reused() {
        let mut pool = ChunkPool::with_capacity(0);
        let mut list = ItemList::EMPTY;
        for i in 0..40 {
            pool.push(&mut list, item(i));
        }
        assert_eq!(pool.peek_ahead(&list, 2), Some(item(2)));
        for i in 0..40 {
            assert_eq!(pool.pop_front(&mut list), Some(item(i)));
        }
        assert!(list.is_empty());
        assert_eq!(pool.pop_front(&mut list), None);
        let grown = pool.chunks.len();
        for i in 0..40 {
            pool.push(&mut list, item(i));
        }
        assert_eq!(pool.chunks.len(), grown, "freed chunks are reused");
        pool.release(&mut list);
        assert!(list.is_empty());
        for i in 0..45 {
            pool.push(&mut list, item(i));
        }
        assert_eq!(pool.chunks.len(), grown);
    }

    #[test]
    fn retain_packs_in_order_and_frees_emptied_chunks() {
        let mut pool = ChunkPool::with_capacity(0);
        let mut list = ItemList::EMPTY;
        for i in 0..50 {
            pool.push(&mut list, item(i));
        }
        pool.pop_front(&mut list);
        let kept = pool.retain(&mut list, |items| {
            items.iter().enumerate().fold(0, |mask, (i, it)| mask | u32::from(it.index % 3 == 0) << i)
        });
        let want: Vec<Item> = (1..50).filter(|i| i % 3 == 0).map(item).collect();
        assert_eq!(kept as usize, want.len());
        let mut got = Vec::new();
        pool.for_each(&list, |items| got.extend_from_slice(items));
        assert_eq!(got, want);
        // 16 items fit in two chunks; the other two went back to the pool.
        let grown = pool.chunks.len();
        let mut other = ItemList::EMPTY;
        for i in 0..30 {
            pool.push(&mut other, item(i));
        }
        assert_eq!(pool.chunks.len(), grown, "freed chunks are reused");
        assert_eq!(pool.retain(&mut list, |_| 0), 0);
        assert!(list.is_empty());
    }

    #[test]
    fn pop_chunk_walks_a_partly_consumed_list() {
        let mut pool = ChunkPool::with_capacity(4);
        let mut list = ItemList::EMPTY;
        for i in 0..20 {
            pool.push(&mut list, item(i));
        }
        pool.pop_front(&mut list);
        pool.pop_front(&mut list);
        let mut out = [Item::default(); CHUNK_ITEMS];
        let mut got = Vec::new();
        loop {
            let n = pool.pop_chunk(&mut list, &mut out);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, (2..20).map(item).collect::<Vec<_>>());
        assert!(list.is_empty());
    }
}
