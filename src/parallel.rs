//! Work split over the machine's cores with `std::thread::scope`: contiguous chunks of items,
//! one per thread, each thread writing only its own part of the output. Every item's result
//! depends on that item alone, so results do not depend on the number of threads. Used by
//! the probes and by the matmul twin (cpu/matmul.rs, which splits its own outputs).

use std::ops::Range;

/// Items a thread gets at least; fewer items run on the calling thread.
const MIN_ITEMS_PER_THREAD: usize = 64;

/// The threads to use: the cores this process may run on.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Calls `work(items, out_part)` for contiguous ranges of the `out.len() / per_item` items,
/// where `out_part` holds the `per_item` outputs of each item in `items`, on up to
/// [`threads`] threads at once.
pub(crate) fn for_chunks<T: Send>(
    out: &mut [T],
    per_item: usize,
    work: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let items = out.len() / per_item.max(1);
    let threads = threads().min(items.div_ceil(MIN_ITEMS_PER_THREAD)).max(1);
    if threads == 1 {
        work(0..items, out);
        return;
    }
    let chunk = items.div_ceil(threads);
    std::thread::scope(|scope| {
        for (index, part) in out.chunks_mut(chunk * per_item).enumerate() {
            let work = &work;
            let start = index * chunk;
            let end = start + part.len() / per_item;
            scope.spawn(move || work(start..end, part));
        }
    });
}
