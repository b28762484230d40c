//! Tables of atomics a process maps on first use and keeps for its life
//! (the metadata and listing caches): nothing at load time, nothing for a
//! process that never uses them.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A `T` mapped zero-filled by the first [`LazyTable::get_or_map`] (the
/// first thread to get there wins; the others' mappings are dropped) and
/// never unmapped.
pub(crate) struct LazyTable<T>(AtomicPtr<T>);

impl<T> LazyTable<T> {
    /// An unmapped table.
    ///
    /// # Safety
    ///
    /// All-zero bytes must be a valid `T` (atomics, integers).
    pub(crate) const unsafe fn new() -> Self {
        LazyTable(AtomicPtr::new(null_mut()))
    }

    /// The table, if mapped.
    pub(crate) fn get(&self) -> Option<&'static T> {
        // Acquire: pairs with the publication in `get_or_map`.
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: non-null only once mapped zero-filled (a valid `T`, as
        // `new`'s caller promised) and never unmapped.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// The table, mapped now if it was not; `None` if the kernel refuses.
    pub(crate) fn get_or_map(&self) -> Option<&'static T> {
        if let Some(t) = self.get() {
            return Some(t);
        }
        #[cfg(not(test))]
        {
            let map = crate::mapped::Mapping::new(size_of::<T>())?;
            let fresh = map.as_ptr().cast::<T>();
            match self
                .0
                .compare_exchange(null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    map.leak();
                }
                // Another thread mapped it first: ours is unmapped on drop.
                Err(_) => drop(map),
            }
        }
        #[cfg(test)]
        {
            // SAFETY: all-zero is a valid `T` (`new`'s contract).
            let fresh = Box::into_raw(unsafe { Box::<T>::new_zeroed().assume_init() });
            let _ = self
                .0
                .compare_exchange(null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire);
        }
        self.get()
    }
}
