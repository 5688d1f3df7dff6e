//! The allocator's settings, shared by the service and the benchmarks that measure it: both
//! install mimalloc as their global allocator and set it up the same way.

/// mimalloc's `mi_option_purge_delay`, numbered as in its `mimalloc.h`: the bindings leave it
/// unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed allocator pages wait before they go back to the system. A replay frees a page
/// of facts every half millisecond or so and reads the next into a block of the same size;
/// given back after 10 ms, each was faulted in afresh, some 170,000 of a national replay's
/// 650,000 page faults, and the returns interrupted the other core to flush its TLB. Waiting a
/// second kept those pages and cost the national replay's peak some 10 MB. Each batch of an
/// import, and each request, likewise frees buffers as large as the next one takes.
const PURGE_DELAY_MS: std::ffi::c_long = 1_000;

/// Sets the purge delay, unless the environment (`MIMALLOC_PURGE_DELAY`) sets one: call first
/// thing in `main`.
#[allow(unsafe_code)]
pub fn set_up() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's option table, which it
        // reads afresh each time it schedules a purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}
