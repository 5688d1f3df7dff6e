//! The allocator's settings, shared by the service and the benchmarks that measure it: both
//! install mimalloc as their global allocator and set it up the same way.

/// mimalloc's `mi_option_purge_delay`, numbered as in its `mimalloc.h`: the bindings leave it
/// unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed allocator pages wait before they go back to the system. mimalloc waits a
/// second; a replay frees the blocks its lists outgrow far faster than that, and a national
/// year peaked some 50 MB higher waiting. At 0 every free of a page asks the system at once and
/// the replay slowed; 10 ms cost nothing measurable. `MIMALLOC_PURGE_DELAY` still decides.
const ALLOCATOR_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets the purge delay, unless the environment already does: call first thing in `main`.
#[allow(unsafe_code)]
pub fn purge_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's option table, which it
        // reads afresh each time it schedules a purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS) };
    }
}
