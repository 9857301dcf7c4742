//! `make bench`: how much heap the catalog graph holds per Component, counted by the
//! allocator rather than read from RSS, so the number is the graph's alone and the
//! same on every run.
//!
//! The catalog: N Components (default 100,000; `PAVE_BENCH_COMPONENTS`) as
//! `pave_catalog::sample` describes them (each also names an API), loaded the way the
//! operator loads a cluster: deferred, then one recompute. The count is of bytes
//! asked for; malloc rounds each allocation up and adds a header, which the
//! allocation count shows the scale of.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use pave_catalog::sample::{Rng, random_catalog};
use pave_catalog::{Catalog, EntityRef};

/// The system allocator, counting what is live and the most that ever was.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

impl Counting {
    fn grew(by: usize) {
        let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    /// Counts a new allocation of `layout` at `ptr`, unless it failed.
    fn allocated(ptr: *mut u8, layout: Layout) -> *mut u8 {
        if !ptr.is_null() {
            Counting::grew(layout.size());
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }
}

// SAFETY: every call is passed to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        Counting::allocated(unsafe { System.alloc(layout) }, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        Counting::allocated(unsafe { System.alloc_zeroed(layout) }, layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                Counting::grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes and allocations now.
fn live() -> (usize, isize) {
    (
        LIVE.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    )
}

fn main() {
    let n: usize = std::env::var("PAVE_BENCH_COMPONENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sample = random_catalog(n, &mut Rng(0x9e37_79b9_7f4a_7c15));
    let names: Vec<EntityRef> = sample
        .iter()
        .map(|(name, _)| EntityRef::component("bench", name))
        .collect();

    let (before, before_allocations) = live();
    PEAK.store(before, Ordering::Relaxed);
    let mut catalog = Catalog::new();
    catalog.defer();
    for (name, refs) in &sample {
        catalog.upsert_component("bench", name, refs);
    }
    catalog.recompute();
    let (loaded, loaded_allocations) = live();
    let peak = PEAK.load(Ordering::Relaxed);
    let per = |bytes: usize| bytes as f64 / n as f64;
    println!(
        "catalog graph: {n} Components ({} entities): {:.0} bytes live heap per Component (target < 500), in {:.1} allocations; peak while loading {:.0} bytes",
        catalog.entity_count(),
        per(loaded - before),
        (loaded_allocations - before_allocations) as f64 / n as f64,
        per(peak - before),
    );

    // A full pass of views, as the operator makes after loading: they are the
    // caller's, so once dropped the graph holds what it held before. (Counted from
    // here: the first line printed allocated stdout's buffer.)
    let (loaded, _) = live();
    let views: Vec<_> = names
        .iter()
        .map(|entity| catalog.view_of(entity).expect("every Component exists"))
        .collect();
    let (with_views, _) = live();
    drop(views);
    let (after, _) = live();
    println!(
        "  views of every Component: {:.0} bytes per Component while held; after dropping them the graph holds {:.0} bytes per Component ({:+} bytes)",
        per(with_views - loaded),
        per(after - before),
        after as isize - loaded as isize,
    );
    assert_eq!(after, loaded, "building views leaves nothing behind");
}
