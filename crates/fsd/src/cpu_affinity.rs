//! Keeping a serving thread and its client on different CPUs
//! ([`CpuSeparation`]), and binding a thread to one CPU ([`bind_to`]).

/// Keeps a serving thread off its client's CPU while the client is busy.
///
/// When both share a CPU, neither may spin (see `shm_ring`'s CPU hints), so
/// each round trip is a pair of context switches; and since only one of the
/// two is ever runnable, the scheduler's load balancer never separates
/// them (measured: `find` over 10 000 files at 2.4× tmpfs instead of
/// ~1.3×). After [`SEPARATE_AFTER`] requests in a row from the serving
/// thread's own CPU, it moves itself to the other CPUs
/// (`sched_setaffinity`); both sides then spin. The thread's affinity is
/// restored when its channel ends.
#[derive(Default)]
pub struct CpuSeparation {
    /// Requests in a row that came from this thread's CPU.
    streak: u32,
    /// The affinity to restore, once changed.
    saved: Option<libc::cpu_set_t>,
}

/// Requests in a row from the serving thread's own CPU before it moves.
const SEPARATE_AFTER: u32 = 8;

impl CpuSeparation {
    /// Notes a request from a client whose CPU hint is `client_cpu`.
    pub fn observe(&mut self, client_cpu: Option<u32>) {
        // SAFETY: no arguments; -1 on failure.
        let ours = unsafe { libc::sched_getcpu() };
        self.observe_on(u32::try_from(ours).ok(), client_cpu);
    }

    /// As [`CpuSeparation::observe`], this thread being on CPU `ours`.
    fn observe_on(&mut self, ours: Option<u32>, client_cpu: Option<u32>) {
        let shared = ours.is_some() && client_cpu == ours;
        self.streak = if shared { self.streak + 1 } else { 0 };
        if self.streak >= SEPARATE_AFTER {
            self.streak = 0;
            if let Some(cpu) = client_cpu {
                self.avoid(cpu as usize);
            }
        }
    }

    /// Restricts this thread to its allowed CPUs other than `cpu`, if any.
    fn avoid(&mut self, cpu: usize) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let Some(allowed) = self.saved.or_else(allowed_cpus) else {
            return;
        };
        let mut others = allowed;
        if cpu >= 8 * size {
            return;
        }
        // SAFETY: `cpu` is within the set (checked above).
        unsafe { libc::CPU_CLR(cpu, &mut others) };
        // SAFETY: reads a valid set.
        if unsafe { libc::CPU_COUNT(&others) } == 0 {
            return;
        }
        // SAFETY: a valid set of `size` bytes; 0 = this thread.
        if unsafe { libc::sched_setaffinity(0, size, &others) } == 0 {
            self.saved = Some(allowed);
        }
    }
}

/// The CPUs this thread may run on (`None` if the kernel does not say).
fn allowed_cpus() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` has room for its size; 0 = this thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    (r == 0).then_some(set)
}

/// Binds this thread to `cpu` if it may run there (else leaves it free:
/// the FUSE io_uring queue of a CPU outside the daemon's set is still
/// served).
pub fn bind_to(cpu: usize) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    let Some(allowed) = allowed_cpus() else {
        return;
    };
    // SAFETY: `cpu` is checked to be within the set first.
    if cpu >= 8 * size || !unsafe { libc::CPU_ISSET(cpu, &allowed) } {
        return;
    }
    // SAFETY: plain data; all-zero is the empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is within the set.
    unsafe { libc::CPU_SET(cpu, &mut one) };
    // SAFETY: `one` is a valid set of `size` bytes; 0 = this thread.
    unsafe { libc::sched_setaffinity(0, size, &one) };
}

impl Drop for CpuSeparation {
    fn drop(&mut self) {
        let Some(mut set) = self.saved.take() else {
            return;
        };
        let size = std::mem::size_of_val(&set);
        // The main thread's affinity, which follows any change made to the
        // daemon meanwhile (taskset, cpusets); else the one we saved.
        // SAFETY: `main` has room for `size` bytes; getpid() is the main
        // thread's id.
        let mut main: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sched_getaffinity(libc::getpid(), size, &mut main) } == 0 {
            set = main;
        }
        // SAFETY: a valid set; 0 = this thread.
        unsafe { libc::sched_setaffinity(0, size, &set) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity() -> libc::cpu_set_t {
        // SAFETY: plain data; the kernel fills it for this thread.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` has room for its size.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        assert_eq!(r, 0);
        set
    }

    fn count(set: &libc::cpu_set_t) -> i32 {
        // SAFETY: a valid set.
        unsafe { libc::CPU_COUNT(set) }
    }

    #[test]
    fn a_busy_client_on_our_cpu_moves_us_away_until_the_channel_ends() {
        std::thread::spawn(|| {
            let before = affinity();
            // SAFETY: no arguments.
            let here = unsafe { libc::sched_getcpu() } as u32;
            let mut sep = CpuSeparation::default();
            let on_here = |sep: &mut CpuSeparation, client| sep.observe_on(Some(here), client);
            for _ in 0..SEPARATE_AFTER - 1 {
                on_here(&mut sep, Some(here));
            }
            assert_eq!(count(&affinity()), count(&before), "moved too early");
            // A request from another CPU breaks the streak.
            on_here(&mut sep, Some(here + 1));
            for _ in 0..SEPARATE_AFTER - 1 {
                on_here(&mut sep, Some(here));
            }
            assert_eq!(count(&affinity()), count(&before));
            on_here(&mut sep, Some(here));
            let during = affinity();
            if count(&before) > 1 {
                // SAFETY: `here` is a valid CPU index.
                assert!(!unsafe { libc::CPU_ISSET(here as usize, &during) });
                assert_eq!(count(&during), count(&before) - 1);
            } else {
                assert_eq!(count(&during), 1, "the only CPU must stay allowed");
            }
            drop(sep);
            assert_eq!(count(&affinity()), count(&before), "affinity not restored");
        })
        .join()
        .unwrap();
    }
}
