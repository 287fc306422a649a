//! How many malloc arenas an Apache child's threads share.
//!
//! glibc gives each thread that calls malloc an arena of its own, up to
//! eight per CPU, and an arena keeps what its threads freed for their
//! reuse. httpd and APR allocate from pools, so Apache's worker threads
//! normally never reach malloc; the Rust side of a request (and Python, in
//! embedded mode) does, so each of a child's 25-64 threads ended up holding
//! its own arena of some 100 KiB: a couple of MiB per child, growing with
//! ThreadsPerChild and the number of CPUs. Sharing two arenas costs little:
//! small blocks come from each thread's own cache without a lock, and in
//! embedded mode Python allocates under the GIL anyway.

use std::ffi::c_int;

/// The main arena and one more.
const ARENAS: c_int = 2;

/// Called in child_init, before the MPM starts the worker threads. An admin
/// who set MALLOC_ARENA_MAX (or glibc's tunable) keeps that choice.
pub fn limit_in_child() {
    let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"));
    if !chosen {
        // SAFETY: mallopt only sets a malloc parameter; it takes malloc's own lock.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
}
