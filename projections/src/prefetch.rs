//! Asking the CPU to bring a value into the cache without waiting for it.

/// Starts bringing the cache line that holds `value` into every level of the cache, and returns
/// at once. A fold's warm that loads what it will write holds the CPU until each of those misses
/// is back; a prefetch lets the fold begin while the last of them are still on their way.
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch changes nothing but the cache and never faults, whatever the address;
    // this one is a reference's, and so valid besides.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
