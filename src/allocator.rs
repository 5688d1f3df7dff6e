//! The allocator's settings, shared by the service and the benchmarks that measure it: both
//! install mimalloc as their global allocator and set it up the same way.

/// mimalloc's `mi_option_purge_delay`, numbered as in its `mimalloc.h`: the bindings leave it
/// unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed allocator pages wait before they go back to the system while folding. A
/// replay frees a page of facts every half millisecond or so and reads the next into a block of
/// the same size: given back after 10 ms, many were faulted in afresh (a national replay made
/// 650,000 page faults; 535,000 at 100 ms, 495,000 at a second). A second held some 20 MB more
/// at the national replay's peak, and its snapshot's save, than 10 ms; 100 ms about half that.
/// At 0 every free of a page asks the system at once and the replay slowed.
const PURGE_DELAY_FOLDING_MS: std::ffi::c_long = 100;

/// How long they wait while importing, or serving once the read models are folded. Each batch
/// of an import, and each request, frees buffers as large as the next one takes: given back
/// after 10 ms, every batch faulted its pages in afresh, a tenth of a region import's time (on a
/// host where a first write to a page costs some 2 µs), and requests did likewise. Peak memory
/// is a replay's, which is over by then.
const PURGE_DELAY_LAZILY_MS: std::ffi::c_long = 1_000;

/// Sets the purge delay for folding, unless the environment (`MIMALLOC_PURGE_DELAY`) sets one:
/// call first thing in `main`.
pub fn purge_promptly() {
    set_purge_delay(PURGE_DELAY_FOLDING_MS);
}

/// Sets the purge delay for importing and for serving once folded, unless the environment sets
/// one.
pub fn purge_lazily() {
    set_purge_delay(PURGE_DELAY_LAZILY_MS);
}

#[allow(unsafe_code)]
fn set_purge_delay(delay_ms: std::ffi::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's option table, which it
        // reads afresh each time it schedules a purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay_ms) };
    }
}
