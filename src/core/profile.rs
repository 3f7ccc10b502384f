//! An optional per-layer time breakdown (`model bench --profile`): each section's time summed
//! over threads, plus the time threads spend waiting at barriers. The passes read a [`Clock`] at
//! phase and layer boundaries (`crate::step`); nothing is wrapped around a kernel call. Off by
//! default; when off, a clock costs one relaxed atomic load per reading.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Load,
    /// A conv layer and its pool, forward (they run interleaved, band by band).
    ConvForward(usize),
    Fc1Forward,
    Head,
    Fc1Backward,
    PoolBackward(usize),
    ConvWeightGrad(usize),
    ConvInputGrad(usize),
    Reduce,
    Update,
    Repack,
    Barrier,
}

const N: usize = 20;

impl Section {
    fn index(self) -> usize {
        match self {
            Section::Load => 0,
            Section::ConvForward(l) => 1 + l,
            Section::Fc1Forward => 4,
            Section::Head => 5,
            Section::Fc1Backward => 6,
            Section::PoolBackward(l) => 7 + l,
            Section::ConvWeightGrad(l) => 10 + l,
            Section::ConvInputGrad(l) => 13 + l,
            Section::Reduce => 16,
            Section::Update => 17,
            Section::Repack => 18,
            Section::Barrier => 19,
        }
    }
    fn all() -> Vec<(Section, String)> {
        let mut v = vec![(Section::Load, "load image".to_string())];
        for l in 0..3 {
            let name = format!("conv{} + pool{} forward", l + 1, l + 1);
            v.push((Section::ConvForward(l), name));
        }
        v.push((Section::Fc1Forward, "fc1 forward".into()));
        v.push((Section::Head, "fc2 + loss + fc2 backward".into()));
        v.push((Section::Fc1Backward, "fc1 backward".into()));
        for l in (0..3).rev() {
            v.push((Section::PoolBackward(l), format!("pool{} backward", l + 1)));
            v.push((
                Section::ConvWeightGrad(l),
                format!("conv{} weight grad", l + 1),
            ));
            if l > 0 {
                v.push((
                    Section::ConvInputGrad(l),
                    format!("conv{} input grad", l + 1),
                ));
            }
        }
        v.push((Section::Reduce, "sum per-sample conv grads".into()));
        v.push((Section::Update, "SGD update".into()));
        v.push((Section::Repack, "repack conv weights".into()));
        v.push((Section::Barrier, "waiting at barriers".into()));
        v
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    for n in &NANOS {
        n.store(0, Ordering::Relaxed);
    }
}

/// A stopwatch read at the boundaries of phases and layers: [`Clock::lap`] adds the time since
/// the last reading to a section. `None` inside when profiling is off.
pub struct Clock(std::cell::Cell<Option<Instant>>);

impl Clock {
    #[inline]
    pub fn start() -> Clock {
        Clock(std::cell::Cell::new(
            ENABLED.load(Ordering::Relaxed).then(Instant::now),
        ))
    }
    /// Adds the time since the start or the previous lap to `s`.
    #[inline]
    pub fn lap(&self, s: Section) {
        if let Some(t) = self.0.get() {
            let now = Instant::now();
            NANOS[s.index()].fetch_add((now - t).as_nanos() as u64, Ordering::Relaxed);
            self.0.set(Some(now));
        }
    }
}

/// The breakdown per training step (`steps` batches were profiled), in milliseconds of thread
/// time per step and percent of the total.
pub fn report(steps: usize) -> String {
    let rows = Section::all();
    let total: u64 = rows
        .iter()
        .map(|(s, _)| NANOS[s.index()].load(Ordering::Relaxed))
        .sum();
    let mut out = format!("per-step thread time ({steps} steps profiled):\n");
    for (s, name) in rows {
        let ns = NANOS[s.index()].load(Ordering::Relaxed);
        out += &format!(
            "  {name:<28} {:>8.2} ms {:>5.1}%\n",
            ns as f64 / 1e6 / steps.max(1) as f64,
            100.0 * ns as f64 / total.max(1) as f64
        );
    }
    out
}
