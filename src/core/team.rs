//! A team of threads that all run the same training loop (SPMD, like an OpenMP parallel
//! region): each phase of a batch is split among them, and a barrier separates phases. Threads
//! are started once per parallel region (an epoch or an evaluation), never per batch.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

pub struct Team {
    pub size: usize,
    barrier: Barrier,
    /// Tickets of [`Team::deal`], never reset: each deal of `n` items consumes exactly
    /// `n + size` of them (every thread draws one past the end), so each thread can keep its
    /// own copy of where the current deal starts.
    tickets: AtomicUsize,
    /// Per thread: the first ticket of its next deal (only thread `t` touches `next_deal[t]`).
    next_deal: Vec<AtomicUsize>,
}

impl Team {
    /// Runs `body(team, thread_index)` on `size` threads (the caller's thread is index 0) and
    /// returns when all have finished.
    pub fn run<F: Fn(&Team, usize) + Sync>(size: usize, body: F) {
        let team = Team::new(size);
        std::thread::scope(|s| {
            for t in 1..size {
                let (team, body) = (&team, &body);
                s.spawn(move || body(team, t));
            }
            body(&team, 0);
        });
    }

    fn new(size: usize) -> Self {
        Team {
            size,
            barrier: Barrier::new(size),
            tickets: AtomicUsize::new(0),
            next_deal: (0..size).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Hands the items `0..n` out one at a time to whichever thread asks first, as an iterator
    /// (`for item in team.deal(t, n) { ... }`): every thread of the team must run a deal with
    /// the same `n` in the same phase, *to its end*, and the team must pass a barrier
    /// ([`Team::sync`]) between two deals (so every ticket of one deal is drawn before any of the
    /// next). A thread that is slowed down (the machine is shared) simply takes fewer items,
    /// where a fixed round-robin made the others wait for it at the next barrier. Which thread
    /// runs an item does not change its result (per-sample work uses only the sample's slot and
    /// the thread's scratch, overwritten each time), so the bits do not depend on it.
    pub fn deal(&self, t: usize, n: usize) -> Deal<'_> {
        Deal {
            team: self,
            t,
            n,
            base: self.next_deal[t].load(Ordering::Relaxed),
        }
    }

    /// Waits until every thread of the team has reached this point.
    pub fn sync(&self) {
        let clock = crate::profile::Clock::start();
        self.barrier.wait();
        clock.lap(crate::profile::Section::Barrier);
    }

    /// Thread `t`'s share of `0..len`, in consecutive parts whose boundaries are multiples of
    /// `align` (the last part takes the remainder). Some parts may be empty.
    pub fn part(&self, len: usize, t: usize, align: usize) -> Range<usize> {
        let units = len.div_ceil(align);
        let per = units / self.size;
        let extra = units % self.size;
        let start = (t * per + t.min(extra)) * align;
        let end = ((t + 1) * per + (t + 1).min(extra)) * align;
        start.min(len)..end.min(len)
    }
}

/// The iterator of [`Team::deal`].
pub struct Deal<'a> {
    team: &'a Team,
    t: usize,
    n: usize,
    /// The deal's first ticket, as this thread counts them.
    base: usize,
}

impl Iterator for Deal<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let ticket = self.team.tickets.fetch_add(1, Ordering::Relaxed);
        debug_assert!(
            ticket >= self.base,
            "deal without a barrier after the previous one"
        );
        let k = ticket - self.base;
        if k < self.n {
            return Some(k);
        }
        // Past the end: the deal used n + size tickets (each thread drew one past the end).
        self.team.next_deal[self.t].store(self.base + self.n + self.team.size, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_once_and_aligned() {
        for size in 1..9 {
            let team = Team::new(size);
            for len in [0, 1, 15, 16, 17, 128, 32768, 1000] {
                let mut next = 0;
                for t in 0..size {
                    let r = team.part(len, t, 16);
                    assert_eq!(r.start, next);
                    assert!(r.start.is_multiple_of(16) || r.start == len);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn deals_hand_out_every_item_once_across_phases() {
        use std::sync::Mutex;
        for size in [1, 2, 3, 7] {
            let seen = Mutex::new(Vec::new());
            Team::run(size, |team, t| {
                for (phase, n) in [5usize, 0, 16, 1, 9].into_iter().enumerate() {
                    for k in team.deal(t, n) {
                        seen.lock().unwrap().push((phase, k));
                    }
                    team.sync();
                }
            });
            let mut seen = seen.into_inner().unwrap();
            seen.sort_unstable();
            let want: Vec<(usize, usize)> = [5usize, 0, 16, 1, 9]
                .into_iter()
                .enumerate()
                .flat_map(|(p, n)| (0..n).map(move |k| (p, k)))
                .collect();
            assert_eq!(seen, want, "{size} threads");
        }
    }
}
