//! A yardstick for the machine a run measured: how fast it hashes (work that stays in the
//! cache) and how long a read that misses every cache takes (what a national replay spends most
//! of its time on). Shared hosts drift by a fifth or more between days, the same build replaying
//! the same year in 1.0 s one day and 1.7 s another, so a figure is compared with another only
//! beside the yardsticks of both runs.

use std::time::Instant;

use sha2::{Digest, Sha256};

/// Bytes hashed, in a buffer that stays in the cache.
const HASHED_BYTES: usize = 256 * 1024 * 1024;
const HASH_BUFFER_BYTES: usize = 64 * 1024;
/// Places in the list chased: 512 MiB of `u32`, far past any cache and the TLB's reach.
const CHASED_PLACES: usize = 128 * 1024 * 1024;
const CHASED_READS: usize = 20_000_000;

/// What the machine did while the yardstick was measured.
pub struct Yardstick {
    /// SHA-256 throughput, MiB/s.
    pub hash_mib_per_second: f64,
    /// The time of one read that depends on the read before and misses every cache, ns.
    pub miss_ns: f64,
}

pub fn measure() -> Yardstick {
    Yardstick {
        hash_mib_per_second: hash_mib_per_second(),
        miss_ns: miss_ns(),
    }
}

fn hash_mib_per_second() -> f64 {
    let buffer = vec![0x5a_u8; HASH_BUFFER_BYTES];
    let began = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..HASHED_BYTES / HASH_BUFFER_BYTES {
        hasher.update(&buffer);
    }
    std::hint::black_box(hasher.finalize());
    let mib = (HASHED_BYTES / (1024 * 1024)) as f64;
    mib / began.elapsed().as_secs_f64()
}

/// Follows a list that visits every place once in a random order, so that no read can start
/// before the one before it ends and no prefetcher can guess the next.
fn miss_ns() -> f64 {
    let next = one_cycle(CHASED_PLACES);
    let began = Instant::now();
    let mut at = 0_u32;
    for _ in 0..CHASED_READS {
        at = next[at as usize];
    }
    std::hint::black_box(at);
    began.elapsed().as_nanos() as f64 / CHASED_READS as f64
}

/// A permutation of `0..places` that is one cycle through them all (Sattolo's shuffle), drawn
/// from a fixed seed.
fn one_cycle(places: usize) -> Vec<u32> {
    let mut next: Vec<u32> = (0..places as u32).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for last in (1..places).rev() {
        // xorshift64: any spread of draws serves; the same seed gives the same list each run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let other = (state % last as u64) as usize;
        next.swap(last, other);
    }
    debug_assert_eq!(cycle_length(&next), places);
    next
}

fn cycle_length(next: &[u32]) -> usize {
    let (mut at, mut length) = (next[0], 1);
    while at != 0 {
        at = next[at as usize];
        length += 1;
    }
    length
}
