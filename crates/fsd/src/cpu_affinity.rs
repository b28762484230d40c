//! Where a serving thread waits for its client's requests
//! ([`CpuSeparation`]), and binding a thread to one CPU ([`bind_to`]).

/// Keeps a serving thread off its client's CPU while the client is busy,
/// and on it while the client pauses.
///
/// A busy client: when both share a CPU, neither may spin (see
/// `shm_ring`'s CPU hints), so each round trip is a pair of context
/// switches; and since only one of the two is ever runnable, the
/// scheduler's load balancer never separates them (measured: `find` over
/// 10 000 files at 2.4× tmpfs instead of ~1.3×). After [`SEPARATE_AFTER`]
/// requests in a row that came from the serving thread's own CPU within
/// the time it spins for one, it moves itself to the other CPUs
/// (`sched_setaffinity`); both sides then spin. Only for a client that
/// calls through this channel alone: the threads of a process on several
/// channels run on every CPU, and a thread kept off one of them queued
/// behind another thread of the client, spinning for its own answer, for
/// a whole time slice (`git status`, 20 threads on 2 CPUs: stalls of
/// 1.4-2 ms, `sched_switch` tracepoint). For the same reason a thread
/// kept apart that gets a quick request from its own CPU again (the
/// client followed it, or another of its threads shares the channel) is
/// let free rather than kept where its client is.
///
/// A client that pauses longer than the thread spins (a compiler parsing
/// between its opens): the thread sleeps, and a request woke it on the CPU
/// it last ran on, idle by then; on a VM waking an idle vCPU is the dearest
/// part of a round trip (a `chmod` every 0.3-1 ms: 36-52 µs on average,
/// 9-10 µs at the median with both on one CPU, ms at times). So before it
/// sleeps, the thread moves to its client's CPU ([`CpuSeparation::join`]):
/// the request then wakes it where the client runs, and it runs as soon
/// as the client waits. The thread's affinity is restored when its
/// channel ends.
#[derive(Default)]
pub struct CpuSeparation {
    /// Requests in a row that came quickly from this thread's CPU.
    streak: u32,
    /// The affinity to restore, once changed.
    saved: Option<libc::cpu_set_t>,
    /// Where the thread is kept now.
    placed: Placed,
}

/// Where a serving thread is kept.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Placed {
    /// Where the daemon may run.
    #[default]
    Free,
    /// Off this CPU (its busy client's).
    Apart(usize),
    /// On this CPU only (its pausing client's).
    With(usize),
}

/// Requests in a row from the serving thread's own CPU before it moves.
const SEPARATE_AFTER: u32 = 8;

impl CpuSeparation {
    /// Notes a request from a client whose CPU hint is `client_cpu`, which
    /// came within the time the thread spins for one (`quick`) or later,
    /// through its only channel (`sole`) or one of several.
    pub fn observe(&mut self, client_cpu: Option<u32>, quick: bool, sole: bool) {
        // SAFETY: no arguments; -1 on failure.
        let ours = unsafe { libc::sched_getcpu() };
        self.observe_on(u32::try_from(ours).ok(), client_cpu, quick, sole);
    }

    /// As [`CpuSeparation::observe`], this thread being on CPU `ours`.
    fn observe_on(&mut self, ours: Option<u32>, client_cpu: Option<u32>, quick: bool, sole: bool) {
        let shared = ours.is_some() && client_cpu == ours;
        if !sole || (quick && shared && matches!(self.placed, Placed::Apart(_))) {
            // Several threads of the client, or one that followed us: no
            // CPU is the client's alone.
            self.streak = 0;
            self.free();
            return;
        }
        // Kept on a client's CPU for its pauses, and it calls quickly
        // again: it would now wait for every answer (or, for a request it
        // posted, give up its CPU for it) where the thread could spin
        // beside it.
        if quick {
            self.leave();
        }
        self.streak = if shared && quick { self.streak + 1 } else { 0 };
        if self.streak >= SEPARATE_AFTER {
            self.streak = 0;
            if let Some(cpu) = client_cpu {
                self.place(Placed::Apart(cpu as usize));
            }
        }
    }

    /// The client pauses longer than a spin: the thread moves to the
    /// client's CPU (hint `client_cpu`) before it sleeps.
    pub fn join(&mut self, client_cpu: Option<u32>) {
        if let Some(cpu) = client_cpu {
            self.place(Placed::With(cpu as usize));
        }
    }

    /// The thread is no longer kept on its client's CPU (it serves one of
    /// several channels of its client: bound there it would queue behind
    /// the client's other threads while another CPU idles).
    pub fn leave(&mut self) {
        if let Placed::With(_) = self.placed {
            self.free();
        }
    }

    /// The thread may run wherever the daemon may again.
    fn free(&mut self) {
        if let (Placed::Apart(_) | Placed::With(_), Some(allowed)) = (self.placed, self.saved) {
            // SAFETY: a valid set of its size; 0 = this thread.
            if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&allowed), &allowed) } == 0
            {
                self.placed = Placed::Free;
            }
        }
    }

    /// Restricts this thread to `to` (within its allowed CPUs), unless it
    /// is kept so already or that would leave it no CPU.
    fn place(&mut self, to: Placed) {
        if self.placed == to {
            return;
        }
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let Some(allowed) = self.saved.or_else(allowed_cpus) else {
            return;
        };
        let (Placed::Apart(cpu) | Placed::With(cpu)) = to else {
            return;
        };
        // SAFETY: `cpu` is checked to be within the set first.
        if cpu >= 8 * size || !unsafe { libc::CPU_ISSET(cpu, &allowed) } {
            return;
        }
        let mut set = allowed;
        if let Placed::Apart(_) = to {
            // SAFETY: `cpu` is within the set (checked above).
            unsafe { libc::CPU_CLR(cpu, &mut set) };
        } else {
            // SAFETY: plain data; all-zero is the empty set.
            set = unsafe { std::mem::zeroed() };
            // SAFETY: `cpu` is within the set.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: reads a valid set.
        if unsafe { libc::CPU_COUNT(&set) } == 0 {
            return;
        }
        // SAFETY: a valid set of `size` bytes; 0 = this thread.
        if unsafe { libc::sched_setaffinity(0, size, &set) } == 0 {
            self.saved = Some(allowed);
            self.placed = to;
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

    /// Runs `test` on a thread of its own (whose affinity it may change)
    /// with that thread's affinity, its CPU and a fresh separation.
    fn on_a_thread_of_its_own(
        test: impl FnOnce(libc::cpu_set_t, u32, CpuSeparation) + Send + 'static,
    ) {
        std::thread::spawn(|| {
            // SAFETY: no arguments.
            let here = unsafe { libc::sched_getcpu() } as u32;
            test(affinity(), here, CpuSeparation::default());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_busy_client_on_our_cpu_moves_us_away_until_the_channel_ends() {
        on_a_thread_of_its_own(|before, here, mut sep| {
            let on_here =
                |sep: &mut CpuSeparation, client| sep.observe_on(Some(here), client, true, true);
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
        });
    }

    #[test]
    fn a_pausing_client_keeps_us_on_its_cpu_until_it_calls_quickly_again() {
        on_a_thread_of_its_own(|before, here, mut sep| {
            sep.join(Some(here));
            let during = affinity();
            assert_eq!(count(&during), 1, "on the client's CPU only");
            // SAFETY: `here` is a valid CPU index.
            assert!(unsafe { libc::CPU_ISSET(here as usize, &during) });
            // Requests after long pauses do not count as a busy client's.
            for _ in 0..2 * SEPARATE_AFTER {
                sep.observe_on(Some(here), Some(here), false, true);
            }
            assert_eq!(count(&affinity()), 1);
            sep.observe_on(Some(here), Some(here), true, true);
            assert_eq!(
                count(&affinity()),
                count(&before),
                "free again at a quick call"
            );
            for _ in 0..SEPARATE_AFTER - 1 {
                sep.observe_on(Some(here), Some(here), true, true);
            }
            if count(&before) > 1 {
                let apart = affinity();
                // SAFETY: as above.
                assert!(!unsafe { libc::CPU_ISSET(here as usize, &apart) });
                assert_eq!(
                    count(&apart),
                    count(&before) - 1,
                    "apart, from all it may use"
                );
            }
            drop(sep);
            assert_eq!(count(&affinity()), count(&before), "affinity not restored");
        });
    }

    #[test]
    fn threads_of_one_client_on_several_channels_never_keep_us_apart() {
        on_a_thread_of_its_own(|before, here, mut sep| {
            for _ in 0..2 * SEPARATE_AFTER {
                sep.observe_on(Some(here), Some(here), true, false);
            }
            assert_eq!(count(&affinity()), count(&before), "kept apart");
            // Kept apart while the client called through one channel, then
            // a quick call from where we were moved: free again.
            for _ in 0..SEPARATE_AFTER {
                sep.observe_on(Some(here), Some(here), true, true);
            }
            if count(&before) > 1 {
                assert_eq!(count(&affinity()), count(&before) - 1, "not apart");
                // SAFETY: no arguments.
                let now = unsafe { libc::sched_getcpu() } as u32;
                sep.observe_on(Some(now), Some(now), true, true);
                assert_eq!(count(&affinity()), count(&before), "still kept apart");
            }
        });
    }
}
