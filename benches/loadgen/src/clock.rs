//! One clock for every process of a run: CLOCK_MONOTONIC is system-wide on Linux, so a
//! timestamp taken by the poster in the coordinator can be compared with the instant a
//! worker process receives the broadcast.

pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
