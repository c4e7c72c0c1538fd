//! Rayon hand-overs only where they can pay. A call from outside a pool
//! hands its work to a worker and sleeps until it is done: about 40 µs on
//! the 2-core Zen 5 VM, the whole run time of a small layer. On a one-thread
//! pool nothing runs in parallel anyway, so the work stays on the calling
//! thread.

/// Whether the current pool (the caller's, or rayon's global one) has a
/// single thread.
pub(crate) fn one_thread() -> bool {
    rayon::current_num_threads() == 1
}

/// `rayon::join`, or `a` then `b` on this thread on a one-thread pool.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if one_thread() { (a(), b()) } else { rayon::join(a, b) }
}

/// Rayon's indexed iterators, kept whole on a one-thread pool.
pub(crate) trait InlineOnOneThread: rayon::iter::IndexedParallelIterator {
    /// The iterator, never split on a one-thread pool: rayon then folds it
    /// on the calling thread with no hand-over to a worker.
    fn inline_on_one_thread(self) -> rayon::iter::MinLen<Self> {
        self.with_min_len(if one_thread() { usize::MAX } else { 1 })
    }
}

impl<I: rayon::iter::IndexedParallelIterator> InlineOnOneThread for I {}
