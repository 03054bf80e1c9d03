//! Work split over the machine's cores on rayon's pool (started once, so a split costs a few
//! microseconds, not the ~60 µs of starting two threads): contiguous chunks of items,
//! one per thread, each thread writing only its own part of the output. Every item's result
//! depends on that item alone, so results do not depend on the number of threads. Used by
//! the probes, the matmul twin (cpu/matmul.rs, which splits its own outputs), Adam's twin
//! and the losses' twins.

use std::ops::Range;

use rayon::prelude::*;

/// Items a thread gets at least; fewer items run on the calling thread.
const MIN_ITEMS_PER_THREAD: usize = 64;

/// The threads to use: the cores this process may run on.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Elements a thread gets at least in the element-wise twins (Adam, the losses): below
/// this, handing work to another thread costs about what the elements take.
pub(crate) const MIN_ELEMENTS_PER_THREAD: usize = 16_384;

/// The threads for `items` items when each thread takes at least `min_per_thread`: at
/// least 1, at most [`threads`].
pub(crate) fn threads_for(items: usize, min_per_thread: usize) -> usize {
    threads().min(items.div_ceil(min_per_thread.max(1))).max(1)
}

/// Calls `work(items, out_part)` for contiguous ranges of the `out.len() / per_item` items,
/// where `out_part` holds the `per_item` outputs of each item in `items`, on up to
/// [`threads`] threads at once.
pub(crate) fn for_chunks<T: Send>(
    out: &mut [T],
    per_item: usize,
    work: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    for_chunks_of_at_least(out, per_item, MIN_ITEMS_PER_THREAD, work);
}

/// [`for_chunks`] with at least `min_items` items a thread.
pub(crate) fn for_chunks_of_at_least<T: Send>(
    out: &mut [T],
    per_item: usize,
    min_items: usize,
    work: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let items = out.len() / per_item.max(1);
    let threads = threads_for(items, min_items);
    if threads == 1 {
        work(0..items, out);
        return;
    }
    let chunk = items.div_ceil(threads);
    out.par_chunks_mut(chunk * per_item)
        .enumerate()
        .for_each(|(index, part)| {
            let start = index * chunk;
            work(start..start + part.len() / per_item, part);
        });
}
