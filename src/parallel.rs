//! Work split over the machine's cores: contiguous chunks of items, one part per thread,
//! each thread writing only its own part of the output. Every item's result depends on that
//! item alone, so results do not depend on the number of threads. Used by the probes, the
//! matmul twin (cpu/matmul.rs, which splits its own outputs), Adam's twin and the losses'
//! twins.
//!
//! The parts run on a pool of our own: one worker per further core, started once, which
//! spins for [`SPIN_BEFORE_PARKING`] after each job before it parks. rayon's workers park
//! within microseconds of going idle, and waking one (a futex wake, then the hypervisor
//! scheduling its virtual CPU) took about 100 µs on a 2-core VM: a CPU training step has
//! ten splits, with serial ops between them, and lost a quarter of its time to wake-ups.
//! While it spins, a worker yields its core every 64 spins: where the threads outnumber the
//! free cores (LATENT_THREADS above them, or another process busy), the spinning workers had
//! kept the threads with work off the cores (an MNIST epoch with 8 threads on 2 cores took
//! 9.6 s, against 1.3 s with 2; with the yield, 1.6 s).
//! The caller takes parts too, so a part no worker has claimed yet runs on the caller.
//! A job takes in only as many workers as it has parts beyond the caller's (workers are
//! numbered; the rest leave it alone), and a worker that no job has taken in for
//! [`SPIN_BEFORE_PARKING`] parks: on many cores a split of a batch of 128 rows into 8 parts
//! had every worker enter and leave it, each an atomic add on the same two words.
//! `bash dev/miri_parallel.sh` runs this file's tests under Miri, with 4 threads.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, TryLockError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Items a thread gets at least; fewer items run on the calling thread.
const MIN_ITEMS_PER_THREAD: usize = 64;

/// The environment variable that sets the threads: a whole number from 1 to MAX_THREADS.
pub(crate) const THREADS_VAR: &str = "LATENT_THREADS";

/// The most threads [`THREADS_VAR`] may ask for: above any machine's cores, below what
/// would exhaust the process's threads.
const MAX_THREADS: usize = 4096;

/// The threads to use, as first asked: [`THREADS_VAR`] where it holds a whole number from 1
/// to MAX_THREADS (the CLI refuses any other value: see [`threads_setting`]), else the
/// cores this process may run on (the question reads the cgroup's CPU quota files on
/// Linux: too slow to ask at every split). The pool starts a worker for each thread beyond
/// the first.
pub(crate) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        threads_setting()
            .ok()
            .flatten()
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// [`THREADS_VAR`] as a thread count: None where it is unset or empty, a message naming it
/// where it is not a whole number from 1 to MAX_THREADS (a String: this file builds alone
/// for Miri).
pub(crate) fn threads_setting() -> Result<Option<usize>, String> {
    let Some(value) = std::env::var_os(THREADS_VAR).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match value.to_str().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(threads) if (1..=MAX_THREADS).contains(&threads) => Ok(Some(threads)),
        _ => Err(format!(
            "{THREADS_VAR}={}: expected the number of CPU threads, a whole number from 1 to \
             {MAX_THREADS}",
            value.to_string_lossy()
        )),
    }
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
    let parts: Vec<_> = out.chunks_mut(chunk * per_item).enumerate().collect();
    for_each_part(parts, |(index, part)| {
        let start = index * chunk;
        work(start..start + part.len() / per_item, part);
    });
}

/// Calls `work` on each part, the parts spread over the pool's workers and the calling
/// thread; returns when every part is done. A panic in a part is raised again here.
pub(crate) fn for_each_part<P: Send>(parts: Vec<P>, work: impl Fn(P) + Sync) {
    let result: Result<(), std::convert::Infallible> = try_for_each_part(parts, |part| {
        work(part);
        Ok(())
    });
    let Ok(()) = result;
}

/// [`for_each_part`] for work that may fail: every part still runs, and the error of the
/// first part (in order) that failed is returned.
pub(crate) fn try_for_each_part<P: Send, E: Send>(
    parts: Vec<P>,
    work: impl Fn(P) -> Result<(), E> + Sync,
) -> Result<(), E> {
    if parts.len() <= 1 {
        return parts.into_iter().try_for_each(work);
    }
    let slots: Vec<Mutex<Option<P>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let first_error: Mutex<Option<(usize, E)>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let body = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = slots.get(index) else {
            break;
        };
        let part = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(Err(e)) = part.map(&work) {
            let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
            if first.as_ref().is_none_or(|(i, _)| index < *i) {
                *first = Some((index, e));
            }
        }
    };
    run_on_pool(&body, slots.len() - 1);
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// How long an idle worker spins before it parks: longer than the serial stretches between
/// a training step's splits (a gather, the small matmuls: up to about 200 µs on the CPU
/// path), short enough that an idle process soon stops using its cores.
const SPIN_BEFORE_PARKING: Duration = Duration::from_millis(2);

/// The gate's bit that says a job is open to workers; the bits below count the workers
/// inside it.
const OPEN: usize = 1 << (usize::BITS - 1);

/// The pool: a worker per core beyond the first, each running [`worker_loop`].
struct Pool {
    /// Held by the thread whose job the workers run: one job at a time. A thread that finds
    /// it held (another thread's job, or a part that splits again) runs its parts itself.
    job: Mutex<()>,
    shared: &'static Shared,
    workers: Vec<Thread>,
}

/// What the workers and the job's caller share.
struct Shared {
    /// Counts jobs; an idle worker waits for it to change.
    generation: AtomicUsize,
    /// [`OPEN`] while the caller takes workers in, and the workers inside the job.
    gate: AtomicUsize,
    /// The job's body, its lifetime erased: written only while the gate is shut and empty,
    /// read only by a worker inside the gate (see [`run_on_pool`]).
    body: UnsafeCell<Option<*const (dyn Fn() + Sync)>>,
    /// How many workers the open job takes in: workers 0 .. wanted (its parts less the
    /// caller's). Written before the job's generation, read after it.
    wanted: AtomicUsize,
    /// Workers parked or about to park.
    parked: AtomicUsize,
    /// A worker's panic, raised again by the job's caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `body` is written by the one caller holding `Pool::job` while no worker can read
// it (the gate shut and empty), and read by workers only between entering the gate (an
// acquire that follows the caller's release of OPEN) and leaving it.
unsafe impl Sync for Shared {}

thread_local! {
    /// Whether this thread is one of the pool's workers.
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The pool, started on first use; None on one core.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(start_pool).as_ref()
}

fn start_pool() -> Option<Pool> {
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        generation: AtomicUsize::new(0),
        gate: AtomicUsize::new(0),
        body: UnsafeCell::new(None),
        wanted: AtomicUsize::new(0),
        parked: AtomicUsize::new(0),
        panic: Mutex::new(None),
    }));
    let workers: Vec<Thread> = (1..threads())
        .filter_map(|i| {
            std::thread::Builder::new()
                .name(format!("latent-cpu-{i}"))
                .spawn(move || worker_loop(shared, i - 1))
                .ok()
                .map(|handle| handle.thread().clone())
        })
        .collect();
    (!workers.is_empty()).then(|| Pool {
        job: Mutex::new(()),
        shared,
        workers,
    })
}

/// Runs `body` on the calling thread and on each of the first `wanted` workers that joins in
/// time; returns once no worker is inside it. `body` shares its work out itself (each call
/// claims parts until none is left), so it is done when the caller's call returns and the
/// workers have left.
fn run_on_pool(body: &(dyn Fn() + Sync), wanted: usize) {
    let Some(pool) = pool() else {
        return body();
    };
    if IS_WORKER.with(Cell::get) {
        return body();
    }
    let _job = match pool.job.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => return body(),
    };
    let shared = pool.shared;
    // SAFETY: only the caller holding `job` writes `body`, and the gate is shut and empty
    // (the last job waited for that), so no worker reads it now. The erased lifetime is
    // safe because this function does not return before the gate is shut and empty again.
    unsafe {
        let erased: *const (dyn Fn() + Sync + '_) = body;
        *shared.body.get() = Some(std::mem::transmute::<
            *const (dyn Fn() + Sync + '_),
            *const (dyn Fn() + Sync + 'static),
        >(erased));
    }
    shared.wanted.store(wanted, Ordering::Relaxed);
    shared.gate.store(OPEN, Ordering::Release);
    shared.generation.fetch_add(1, Ordering::SeqCst);
    if shared.parked.load(Ordering::SeqCst) > 0 {
        pool.workers.iter().take(wanted).for_each(Thread::unpark);
    }
    let result = catch_unwind(AssertUnwindSafe(body));
    shared.gate.fetch_and(!OPEN, Ordering::AcqRel);
    while shared.gate.load(Ordering::Acquire) != 0 {
        std::hint::spin_loop();
    }
    // SAFETY: the gate is shut and empty, as above.
    unsafe { *shared.body.get() = None };
    let worker_panic = shared
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Err(payload) = result {
        resume_unwind(payload);
    }
    if let Some(payload) = worker_panic {
        resume_unwind(payload);
    }
}

/// Worker number `index`: waits for a job, enters its gate if the job takes this worker in
/// and is still open, runs its body, leaves.
fn worker_loop(shared: &'static Shared, index: usize) {
    IS_WORKER.with(|w| w.set(true));
    let mut seen = shared.generation.load(Ordering::Acquire);
    // When this worker last took part in a job (or woke): it parks SPIN_BEFORE_PARKING later.
    let mut since = Instant::now();
    loop {
        wait_for_job(shared, &mut seen, &mut since);
        // A stale count (a later job's) only moves parts between the caller and workers.
        if index >= shared.wanted.load(Ordering::Acquire) || !enter(shared) {
            continue;
        }
        // SAFETY: inside the gate the caller neither returns nor rewrites `body`.
        if let Some(body) = unsafe { *shared.body.get() } {
            // SAFETY: as above; the pointer came from a live `&dyn Fn() + Sync`.
            let run = || unsafe { (*body)() };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(run)) {
                *shared.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
            }
        }
        shared.gate.fetch_sub(1, Ordering::Release);
        since = Instant::now();
    }
}

/// Counts this worker in, if a job is open.
fn enter(shared: &Shared) -> bool {
    let mut gate = shared.gate.load(Ordering::Acquire);
    while gate & OPEN != 0 {
        match shared
            .gate
            .compare_exchange_weak(gate, gate + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return true,
            Err(now) => gate = now,
        }
    }
    false
}

/// Spins until the job count moves past `seen`, parking once [`SPIN_BEFORE_PARKING`] has
/// passed since `since` (which a wake-up from parking restarts).
fn wait_for_job(shared: &Shared, seen: &mut usize, since: &mut Instant) {
    let mut spins = 0u32;
    loop {
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != *seen {
            *seen = generation;
            return;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) {
            std::hint::spin_loop();
            continue;
        }
        if since.elapsed() < SPIN_BEFORE_PARKING {
            // Gives the core to a thread that has work, where the cores are fewer than the
            // threads (LATENT_THREADS above them, other processes); returns at once where
            // none waits.
            std::thread::yield_now();
            continue;
        }
        // Counted as parked before the last look: a caller that bumps the count after it
        // sees this worker parked and unparks it (both in one total order, SeqCst).
        shared.parked.fetch_add(1, Ordering::SeqCst);
        if shared.generation.load(Ordering::SeqCst) == *seen {
            std::thread::park();
        }
        shared.parked.fetch_sub(1, Ordering::SeqCst);
        *since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part runs once, whatever the number of parts against threads, also when parts
    /// split again (nested calls run on the thread that makes them).
    #[test]
    fn every_part_runs_once() {
        let rounds = if cfg!(miri) { 5 } else { 50 };
        for parts in [2, 3, 17, 64] {
            for _ in 0..rounds {
                let runs: Vec<AtomicUsize> = (0..parts * 3).map(|_| AtomicUsize::new(0)).collect();
                for_each_part((0..parts).collect(), |p: usize| {
                    runs[p].fetch_add(1, Ordering::Relaxed);
                    for_each_part(vec![parts + p, 2 * parts + p], |q: usize| {
                        runs[q].fetch_add(1, Ordering::Relaxed);
                    });
                });
                let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
                assert_eq!(counts, vec![1; parts * 3], "{parts} parts");
            }
        }
    }

    /// Threads that split work at the same time (one holds the pool, the others run their
    /// parts themselves) each get every one of their parts run once.
    #[test]
    fn concurrent_callers_each_get_every_part() {
        std::thread::scope(|s| {
            for caller in 0..4 {
                s.spawn(move || {
                    for job in 0..200 {
                        let parts = 2 + (caller + job) % 7;
                        let runs: Vec<AtomicUsize> =
                            (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        for_each_part((0..parts).collect(), |p: usize| {
                            runs[p].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }

    /// The pool has a worker for each thread beyond the first, and a job takes in as many as
    /// it has parts beyond the caller's, the first ones: a job of two parts only worker 1
    /// (named latent-cpu-1). With 2 threads that is the only worker; `LATENT_THREADS=4 cargo
    /// test --lib parallel` and dev/miri_parallel.sh check the rest. Under Miri there must
    /// be 4 threads, so that the workers' side is checked at all (Miri's machine has one
    /// core unless told otherwise).
    #[test]
    fn a_job_takes_in_a_worker_for_each_further_part() {
        if cfg!(miri) {
            assert_eq!(
                threads(),
                4,
                "dev/miri_parallel.sh runs with -Zmiri-num-cpus=4"
            );
        }
        let workers = pool().map_or(0, |p| p.workers.len());
        assert_eq!(workers, threads() - 1);
        if workers == 0 {
            return;
        }
        // Jobs of two parts: only the first worker is taken in, and (the parts being slow) it
        // takes one while the caller takes the other, in jobs that get the pool (other
        // tests' jobs may hold it: then the caller runs both).
        let names = Mutex::new(Vec::new());
        for _ in 0..20 {
            // A part for every thread first: every worker awake, spinning, in reach.
            for_each_part((0..threads()).collect(), |_: usize| {});
            for_each_part(vec![0, 1], |_: usize| {
                std::thread::sleep(Duration::from_millis(2));
                if IS_WORKER.with(Cell::get) {
                    let name = std::thread::current().name().map(str::to_owned);
                    names.lock().unwrap().push(name);
                }
            });
        }
        let names = names.into_inner().unwrap();
        assert!(!names.is_empty(), "no part ran on a worker");
        assert!(
            names
                .iter()
                .all(|name| name.as_deref() == Some("latent-cpu-1")),
            "{names:?}"
        );
    }

    /// A failing part gives the first failing part's error; the other parts still run.
    #[test]
    fn the_first_failing_part_gives_the_error() {
        let ran = AtomicUsize::new(0);
        let result = try_for_each_part((0..8).collect(), |p: usize| {
            ran.fetch_add(1, Ordering::Relaxed);
            if p % 3 == 2 {
                Err(p)
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err(2));
        assert_eq!(ran.load(Ordering::Relaxed), 8);
    }

    /// A panic in a part reaches the caller, also from a worker's part (where there are
    /// workers: on one core there are none), and the pool goes on working after it.
    #[test]
    fn a_panic_reaches_the_caller_and_the_pool_goes_on() {
        for _ in 0..5 {
            let caught = catch_unwind(|| {
                for_each_part((0..4).collect(), |p: usize| {
                    assert!(p != 3, "part 3 fails");
                });
            });
            let message = caught.expect_err("the panic reaches the caller");
            let text = message.downcast_ref::<&str>().copied();
            assert_eq!(text, Some("part 3 fails"));
        }
        if threads() > 1 {
            // Parts slow enough that a worker takes some, failing only there. A job whose
            // pool another test holds runs on its caller alone (no panic): tried again.
            let caught = (0..100)
                .map(|_| {
                    catch_unwind(|| {
                        for_each_part((0..8).collect(), |_: usize| {
                            std::thread::sleep(Duration::from_millis(2));
                            assert!(!IS_WORKER.with(Cell::get), "a worker's part fails");
                        });
                    })
                })
                .find(Result::is_err);
            let message = caught
                .expect("a job of the pool's")
                .expect_err("the worker's panic reaches the caller");
            let text = message.downcast_ref::<&str>().copied();
            assert_eq!(text, Some("a worker's part fails"));
        }
        let sum = AtomicUsize::new(0);
        for_each_part((1..=10).collect(), |p: usize| {
            sum.fetch_add(p, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 55);
    }
}
