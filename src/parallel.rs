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
