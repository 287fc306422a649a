//! The buffers bodies cross the hop in: PIECE bytes each, mapped from the
//! system rather than taken from malloc, and given back to it once the
//! process has had no use for them for a while.
//!
//! From malloc they would stay for good: glibc gives each thread an arena
//! (up to 16 of them for Apache's 25-50 threads), keeps what is freed there
//! for reuse, and once a large block has been freed serves the next large
//! ones from arenas too, so every Apache child ended up holding a response's
//! or a read-ahead's worth of memory per arena. Mapping and unmapping each
//! piece every time instead costs page faults and TLB flushes on every
//! request; so pieces wait in a shared cache while the process is busy, and
//! a short-lived thread unmaps them after a quiet second.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use memmap2::MmapMut;
use parking_lot::Mutex;

use super::wire::PIECE;

/// Pieces cached while busy, at most: 16 MiB, a read-ahead of the default
/// request-buffer-size (1 MiB) for each of 16 concurrent uploads.
const MAX_CACHED: usize = 256;
/// Pieces kept once quiet.
const KEEP_QUIET: usize = 1;
/// How long without a piece taken is quiet.
const QUIET: Duration = Duration::from_secs(1);

static CACHED: Mutex<Vec<MmapMut>> = Mutex::new(Vec::new());
/// Pieces taken so far: the trimmer sees whether any were taken meanwhile.
static TAKEN: AtomicU64 = AtomicU64::new(0);
static TRIMMING: AtomicBool = AtomicBool::new(false);

/// PIECE bytes (zeros, or what an earlier exchange left).
pub struct Piece(Option<MmapMut>);

impl Piece {
    pub fn take() -> std::io::Result<Piece> {
        TAKEN.fetch_add(1, Ordering::Relaxed);
        if let Some(map) = CACHED.lock().pop() {
            return Ok(Piece(Some(map)));
        }
        MmapMut::map_anon(PIECE).map(|map| Piece(Some(map)))
    }
}

impl Deref for Piece {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Piece {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        let Some(map) = self.0.take() else { return };
        let cached = {
            let mut cached = CACHED.lock();
            if cached.len() >= MAX_CACHED {
                return; // unmapped here, with the lock let go
            }
            cached.push(map);
            cached.len()
        };
        if cached > KEEP_QUIET && !TRIMMING.swap(true, Ordering::AcqRel) {
            start_trimmer();
        }
    }
}

/// Unmaps all but KEEP_QUIET cached pieces once a QUIET interval passes
/// with none taken, then ends (or goes on, if more came back meanwhile).
fn start_trimmer() {
    let run = || {
        loop {
            let before = TAKEN.load(Ordering::Relaxed);
            std::thread::sleep(QUIET);
            if TAKEN.load(Ordering::Relaxed) != before {
                continue;
            }
            trim();
            TRIMMING.store(false, Ordering::Release);
            // A piece given back between the trim and the store found the
            // trimmer still running: go on for it.
            if CACHED.lock().len() <= KEEP_QUIET || TRIMMING.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    };
    if std::thread::Builder::new().name("mod_wsgi pieces".into()).stack_size(64 * 1024).spawn(run).is_err() {
        // No thread to trim later: trim now.
        trim();
        TRIMMING.store(false, Ordering::Release);
    }
}

fn trim() {
    let surplus: Vec<MmapMut> = {
        let mut cached = CACHED.lock();
        let keep = cached.len().min(KEEP_QUIET);
        cached.drain(keep..).collect()
    };
    drop(surplus); // unmapped with the lock let go
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_cached_while_busy_and_unmapped_when_quiet() {
        let pieces: Vec<Piece> = (0..5).map(|_| Piece::take().unwrap()).collect();
        assert!(pieces.iter().all(|p| p.len() == PIECE));
        drop(pieces);
        assert_eq!(CACHED.lock().len(), 5);
        let mut p = Piece::take().unwrap();
        p[PIECE - 1] = 7;
        assert_eq!(CACHED.lock().len(), 4);
        drop(p);
        std::thread::sleep(QUIET * 3);
        assert_eq!(CACHED.lock().len(), KEEP_QUIET);
    }
}
