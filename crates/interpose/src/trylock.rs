//! A value one thread at a time may hold, taken without waiting: the
//! library's small slot caches (`opendata`, `linkcache`) use a slot or, when
//! another thread holds it, do without it — a hooked call never waits for
//! another thread's cache work.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// `T` behind a flag (see the module docs).
pub(crate) struct TryLock<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a `Guard`, and at most one
// guard exists at a time (the flag's compare-exchange hands out one).
unsafe impl<T: Send> Sync for TryLock<T> {}

impl<T> TryLock<T> {
    /// `value`, free.
    pub(crate) const fn new(value: T) -> TryLock<T> {
        TryLock {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, unless another thread holds it.
    pub(crate) fn try_lock(&self) -> Option<Guard<'_, T>> {
        // Acquire: what the last holder wrote is seen.
        self.held
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Guard(self))
    }
}

/// The held value; given back when dropped.
pub(crate) struct Guard<'a, T>(&'a TryLock<T>);

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `TryLock::try_lock`).
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one, borrowed mutably here.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // Release: what this holder wrote is seen by the next.
        self.0.held.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let l = TryLock::new(5);
        let mut g = l.try_lock().unwrap();
        assert!(l.try_lock().is_none(), "held");
        *g += 1;
        drop(g);
        assert_eq!(*l.try_lock().unwrap(), 6);
    }
}
