//! Flat, 64-byte-aligned memory arenas carved into named views (the original's `buffer.asm`).
//!
//! The original kept every tensor as a static `.bss` buffer. We size the same buffers at start-up
//! from the hyperparameters: an [`ArenaLayout`] hands out [`View`]s (offset + length, each start
//! rounded up to 16 floats = one cache line), then one zeroed allocation backs them all. Nothing
//! is allocated after that. An arena of 2 MiB or more is a mapping of its own on a 2 MiB
//! boundary, offered transparent huge pages (`madvise`, see `huge_mapping`), so that a short
//! run's start-up faults its arenas in 2 MiB at a time instead of 4 KiB (what it bought, and
//! that the steady-state rates did not move: benches/HISTORY.md).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Floats per 64-byte cache line; every view starts on one.
pub const LINE: usize = 16;

/// A named range of an arena, in floats (or bytes, for a byte arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct View {
    pub off: usize,
    pub len: usize,
}

impl View {
    /// The end offset (exclusive).
    pub fn end(&self) -> usize {
        self.off + self.len
    }
    /// The `i`-th of `count` equal consecutive sub-views of `len` elements each, starting here.
    pub fn slot(&self, i: usize, len: usize) -> View {
        debug_assert!((i + 1) * len <= self.len);
        View {
            off: self.off + i * len,
            len,
        }
    }
}

/// Hands out aligned views; `total()` is the arena size to allocate.
#[derive(Default, Debug)]
pub struct ArenaLayout {
    len: usize,
}

impl ArenaLayout {
    pub fn new() -> Self {
        Self::default()
    }
    /// Reserves `len` elements starting on a cache line.
    pub fn take(&mut self, len: usize) -> View {
        let off = self.len.div_ceil(LINE) * LINE;
        self.len = off + len;
        View { off, len }
    }
    /// Reserves `len` elements packed right after the previous view (no alignment gap), so that
    /// consecutive views form one contiguous run (the parameter file order needs this).
    pub fn take_packed(&mut self, len: usize) -> View {
        let off = self.len;
        self.len = off + len;
        View { off, len }
    }
    /// Elements needed, rounded up to a whole cache line.
    pub fn total(&self) -> usize {
        self.len.div_ceil(LINE) * LINE
    }
}

/// Element types an [`Arena`] may hold: plain old data, for which all-zero bytes are a valid
/// value (arenas start zeroed) and any bytes may be read back. Sealed: only this module
/// implements it, for `f32`, `u8`, `u16`, `u32` and `i32`, so that safe code cannot make an
/// arena of references or other types whose zero bytes are not a value:
///
/// ```compile_fail
/// let refs = catdog_core::arena::Arena::<&u8>::zeroed(16); // no Pod for &u8: does not compile
/// ```
///
/// ```
/// let floats = catdog_core::arena::Arena::<f32>::zeroed(16).unwrap();
/// assert!(floats.all().iter().all(|&v| v == 0.0));
/// ```
pub trait Pod: Copy + private::Sealed {}

mod private {
    pub trait Sealed {}
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Pod for $t {}
    )*};
}
pod!(f32, u8, u16, u32, i32);

/// One zeroed, 64-byte-aligned allocation of `T` (f32 or u8).
pub struct Arena<T: Pod> {
    ptr: NonNull<T>,
    len: usize,
    /// The memory's own mapping ([`huge_mapping`]), unmapped when it drops; `None` when the
    /// memory came from the global allocator.
    mapping: Option<memmap2::MmapMut>,
}

/// Arenas of at least this many bytes are mapped on their own at a 2 MiB boundary and offered
/// transparent huge pages.
const HUGE: usize = 2 << 20;

/// An anonymous (zeroed) mapping of `bytes` + 2 MiB and the offset in it of the first 2 MiB
/// boundary, from where `bytes` are advised to use transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`, Linux: where THP is in `madvise` mode, the usual default, nothing
/// else gets them). One fault then maps 2 MiB instead of 4 KiB, and the TLB covers the arena
/// with 512x fewer entries. `None` when the mapping fails (the caller falls back to the
/// allocator). The advice is only advice: where the kernel has no huge page to give, or
/// refuses, the memory is ordinary pages; it changes speed, never contents.
fn huge_mapping(bytes: usize) -> Option<(memmap2::MmapMut, usize)> {
    let map = memmap2::MmapMut::map_anon(bytes.checked_add(HUGE)?).ok()?;
    let start = map.as_ptr().align_offset(HUGE);
    #[cfg(target_os = "linux")]
    let _ = map.advise_range(memmap2::Advice::HugePage, start, bytes);
    Some((map, start))
}

// SAFETY: the arena owns its memory like a Box<[T]>; sharing rules are enforced by the borrow
// checker on the safe API and by the callers of the unsafe raw-pointer API.
unsafe impl<T: Pod + Send> Send for Arena<T> {}
unsafe impl<T: Pod + Sync> Sync for Arena<T> {}

impl<T: Pod> Arena<T> {
    /// Allocates `len` zeroed elements (at least one cache line), or returns an error that says
    /// how much memory was asked for.
    pub fn zeroed(len: usize) -> Result<Self, String> {
        let bytes = len
            .max(LINE)
            .checked_mul(std::mem::size_of::<T>())
            .ok_or("arena size overflows")?;
        if bytes >= HUGE {
            if let Some((mut map, start)) = huge_mapping(bytes) {
                // `start + bytes` lies inside the mapping (`bytes + 2 MiB` long).
                let ptr = NonNull::new(map[start..].as_mut_ptr() as *mut T).expect("mapped");
                return Ok(Self {
                    ptr,
                    len,
                    mapping: Some(map),
                });
            }
        }
        let layout = Layout::from_size_align(bytes, 64).map_err(|e| e.to_string())?;
        // SAFETY: layout has non-zero size; all-zero bits are a valid f32 / u8.
        let raw = unsafe { alloc_zeroed(layout) } as *mut T;
        let ptr = NonNull::new(raw).ok_or_else(|| {
            format!(
                "could not allocate {:.1} MiB",
                bytes as f64 / (1 << 20) as f64
            )
        })?;
        Ok(Self {
            ptr,
            len,
            mapping: None,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
    pub fn all(&self) -> &[T] {
        // SAFETY: ptr is valid for len initialised elements.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    pub fn all_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
    pub fn get(&self, v: View) -> &[T] {
        &self.all()[v.off..v.end()]
    }
    pub fn get_mut(&mut self, v: View) -> &mut [T] {
        &mut self.all_mut()[v.off..v.end()]
    }
    /// A shared handle that lets several threads write disjoint views at once.
    pub fn shared(&mut self) -> Shared<'_, T> {
        Shared {
            ptr: self.ptr,
            len: self.len,
            _borrow: std::marker::PhantomData,
        }
    }
}

impl<T: Pod> Drop for Arena<T> {
    fn drop(&mut self) {
        if self.mapping.is_some() {
            return; // the mapping unmaps itself when the field drops
        }
        let bytes = self.len.max(LINE) * std::mem::size_of::<T>();
        // SAFETY: same layout as in `zeroed`.
        unsafe {
            dealloc(
                self.ptr.as_ptr() as *mut u8,
                Layout::from_size_align_unchecked(bytes, 64),
            )
        }
    }
}

/// An arena borrowed for a parallel region: each thread takes views of it. Views are
/// bounds-checked; *disjointness* of views written by different threads at the same time is
/// the caller's promise (the training loop's phases are separated by barriers).
#[derive(Clone, Copy)]
pub struct Shared<'a, T: Pod> {
    ptr: NonNull<T>,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

unsafe impl<T: Pod + Send> Send for Shared<'_, T> {}
unsafe impl<T: Pod + Sync> Sync for Shared<'_, T> {}

impl<'a, T: Pod> Shared<'a, T> {
    /// Read access to `v`.
    ///
    /// # Safety
    /// No thread may write any part of `v` while the returned slice lives.
    pub unsafe fn get(&self, v: View) -> &'a [T] {
        assert!(
            v.end() <= self.len,
            "view {v:?} outside arena of {}",
            self.len
        );
        std::slice::from_raw_parts(self.ptr.as_ptr().add(v.off), v.len)
    }
    /// Write access to `v`.
    ///
    /// # Safety
    /// No other thread may read or write any part of `v` while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_mut(&self, v: View) -> &'a mut [T] {
        assert!(
            v.end() <= self.len,
            "view {v:?} outside arena of {}",
            self.len
        );
        std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(v.off), v.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_aligned_and_disjoint() {
        let mut l = ArenaLayout::new();
        let a = l.take(3);
        let b = l.take(17);
        let c = l.take(1);
        assert_eq!(a.off, 0);
        assert_eq!(b.off, 16);
        assert_eq!(c.off, 48);
        assert_eq!(l.total(), 64);
        let mut arena = Arena::<f32>::zeroed(l.total()).unwrap();
        assert_eq!(arena.all().as_ptr() as usize % 64, 0);
        assert!(arena.all().iter().all(|&x| x == 0.0));
        arena.get_mut(b).fill(1.0);
        assert_eq!(arena.get(a), &[0.0; 3]);
        assert_eq!(arena.get(c), &[0.0]);
        assert_eq!(arena.all()[16..33].iter().sum::<f32>(), 17.0);
    }

    #[test]
    fn large_arenas_are_zeroed_whole_and_aligned_to_huge_pages() {
        // Float arenas of 3 MiB and a line and of exactly 2 MiB, and a byte arena of 2 MiB:
        // mapped on their own, zeroed, writable to the last element, unmapped on
        // drop; just below the threshold, the allocator's 64-byte alignment.
        for len in [(3 << 20) / 4 + 16, (2 << 20) / 4] {
            let mut a = Arena::<f32>::zeroed(len).unwrap();
            let addr = a.all().as_ptr() as usize;
            assert_eq!(addr % 64, 0);
            assert_eq!(addr % HUGE, 0, "{len} floats not at a 2 MiB boundary");
            assert!(a.mapping.is_some());
            assert!(a.all().iter().all(|&x| x == 0.0));
            a.all_mut().fill(2.0);
            assert_eq!(a.all()[len - 1], 2.0);
            assert_eq!(a.len(), len);
        }
        let b = Arena::<u8>::zeroed(2 << 20).unwrap();
        assert!(b.all().iter().all(|&x| x == 0));
        let small = Arena::<f32>::zeroed((2 << 20) / 4 - 16).unwrap();
        assert!(small.mapping.is_none());
        assert_eq!(small.all().as_ptr() as usize % 64, 0);
    }

    #[test]
    fn packed_views_are_contiguous() {
        let mut l = ArenaLayout::new();
        let a = l.take_packed(5);
        let b = l.take_packed(7);
        assert_eq!(b.off, a.end());
    }
}
