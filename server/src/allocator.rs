//! One allocator setting for a server that reloads large files now and then.
//!
//! A reload reads a whole watched file into one buffer (a 100,000-token tokens.yaml is 10-15 MB)
//! and frees it moments later. glibc serves such a block with `mmap` and returns it on `free` —
//! but then raises its "mmap threshold" to the freed size (the dynamic threshold), so the next
//! reload's buffers come from the heap, whose freed space is kept by the process: measured here,
//! an instance with 100k tokens grew from 23 MiB to 64 MiB RSS over three token rotations and
//! stayed there. Fixing the threshold (256 KiB, 2x glibc's initial 128 KiB) turns the dynamic
//! adjustment off: large buffers always go back to the kernel. Reloads run on tokio's blocking pool,
//! whose threads come and go and each may get its own malloc arena (up to 8 per core), every arena
//! keeping what it freed; so arenas are capped at one per core, which the request path (one tokio
//! worker per core) needs anyway. Measured with 100k tokens over 8 rotations: 23 -> 64 MiB before,
//! 23 -> 43 MiB with the threshold alone, 23 -> 28 MiB with both. Allocations below the threshold
//! (every request's) are unaffected.

/// Hands the heap's free pages back to the kernel (glibc's `malloc_trim`): after thousands of
/// connections have closed (`connections`), the ~20 KiB each used is free in the heap but still in
/// the process's RSS, which an orchestrator's memory limit counts. Takes milliseconds on a large
/// heap, so it runs on the blocking pool, and only after a wave of closes.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory, under glibc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Applies the setting; call once at start-up, before the files are loaded.
pub fn tune_for_reloads() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocator parameters, and takes glibc's own locks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
    }
}
