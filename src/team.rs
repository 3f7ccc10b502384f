//! A team of threads that all run the same training loop (SPMD, like an OpenMP parallel
//! region): each phase of a batch is split among them, and a barrier separates phases. Threads
//! are started once per parallel region (an epoch or an evaluation), never per batch.

use std::ops::Range;
use std::sync::Barrier;

pub struct Team {
    pub size: usize,
    barrier: Barrier,
}

impl Team {
    /// Runs `body(team, thread_index)` on `size` threads (the caller's thread is index 0) and
    /// returns when all have finished.
    pub fn run<F: Fn(&Team, usize) + Sync>(size: usize, body: F) {
        let team = Team {
            size,
            barrier: Barrier::new(size),
        };
        std::thread::scope(|s| {
            for t in 1..size {
                let (team, body) = (&team, &body);
                s.spawn(move || body(team, t));
            }
            body(&team, 0);
        });
    }

    /// Waits until every thread of the team has reached this point.
    pub fn sync(&self) {
        crate::profile::time(crate::profile::Section::Barrier, || self.barrier.wait());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_once_and_aligned() {
        for size in 1..9 {
            let team = Team {
                size,
                barrier: Barrier::new(1),
            };
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
}
