//! The refresher (see [`Public::start_refresher`]): the thread that keeps
//! the table current as changes void its answers, publishing again what a
//! change voided once it settled, and stamping again, every few hundred
//! changes, what no change touched.

use std::io;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inode_store::{Creds, Ino, Store};

use super::{Held, Public};

/// The refresher's pause after a pass that left work, at least, in times
/// the pass took: a program filling directories the table holds names of
/// (`rsync` into the mount `stat`s each name first, publishing its
/// absence) keeps it busy.
const REFRESH_SHARE: u32 = 4;

/// How long no change must have touched an inode before the refresher
/// publishes again what changes to it voided.
const SETTLED: Duration = Duration::from_millis(1);

/// Changes between two sweeps of the table (see [`Public::sweep`]).
pub(super) const SWEEP_EVERY: u64 = 384;

impl Public {
    /// Wakes the refresher if it waits for work (while it has some, it
    /// looks again on its own: a change pays no wake-up).
    pub(super) fn wake_refresher(&self, held: &mut Held) {
        if std::mem::take(&mut held.idle) {
            if let Some(wake) = self.refresher.get() {
                let _ = wake.try_send(());
            }
        }
    }

    /// Starts the thread that publishes again, once each change has
    /// ended, the names a change voided: the entries in a directory whose
    /// names changed (every answer in it is void, see `holds_for_name`)
    /// and the entries of an inode that changed (scrubbed), each as the
    /// store now answers it (a file's bytes stay only where [`renew`]
    /// keeps them). A build that writes objects beside its sources voids
    /// its compilers' answers at each object; published again, the next
    /// compiler finds them. A global change (every entry scrubbed) is
    /// left to the opens and `stat`s that publish. An inode is taken once
    /// changes to it settled ([`SETTLED`]); while some have not, the
    /// thread looks again every [`SETTLED`] (changes do not wake it), and
    /// takes at most a fifth of a CPU ([`REFRESH_SHARE`]).
    ///
    /// [`renew`]: Public::renew
    pub fn start_refresher(self: &Arc<Self>, store: Arc<Store>) -> io::Result<()> {
        let (wake, woken) = sync_channel(1);
        let _ = self.refresher.set(wake);
        let public = self.clone();
        std::thread::Builder::new()
            .name("btfuse-refresher".into())
            .spawn(move || loop {
                let start = Instant::now();
                let swept = public.sweep(&store);
                let done = public.refresh(&store) && swept;
                // At most a fifth of a CPU, whatever the changes.
                let rest = start.elapsed() * REFRESH_SHARE;
                if !done {
                    // Work left (an inode not settled): looked at again then.
                    std::thread::sleep(SETTLED.max(rest));
                    continue;
                }
                let more = {
                    let mut held = public.held.lock();
                    let more = !held.stale.is_empty() || held.unswept >= SWEEP_EVERY;
                    held.idle = !more;
                    more
                };
                if more {
                    std::thread::sleep(rest);
                } else if woken.recv().is_err() {
                    break;
                }
            })?;
        Ok(())
    }

    /// Stamps again, once [`SWEEP_EVERY`] changes passed, every entry that
    /// no change since its stamp touched (its directory's names, its
    /// inode: what `Now::holds_for_name` looks at) and that is older than
    /// that: a client checks an answer against the changes since its
    /// stamp, at most the log's records, so an entry nothing touched would
    /// otherwise be void once the mount made that many changes elsewhere.
    /// What touched what is told by the changes' scrubs (the last change
    /// that touched each inode the table holds entries for or in): one
    /// pass over the daemon's record of the entries, no table lookup;
    /// `false` if it is due but could not run (no moment without a change
    /// in progress).
    fn sweep(&self, store: &Store) -> bool {
        if self.held.lock().unswept < SWEEP_EVERY {
            return true;
        }
        // Every change up to `now` ended (and was scrubbed).
        let Some(now) = store.quiet_stamp() else {
            return false;
        };
        // Under the lock, which every writer and every change's scrub
        // takes: an entry a change scrubbed since `now` has stamp 0, one a
        // writer replaced is young, and a change after `now` is one its
        // readers see (its record, or a record missing: global).
        let mut held = self.held.lock();
        let Held {
            by_entry,
            by_ino,
            by_parent,
            unswept,
            touched_at,
            global_at,
            ..
        } = &mut *held;
        *unswept = 0;
        touched_at.retain(|ino, _| by_ino.contains_key(ino) || by_parent.contains_key(ino));
        let touched = |ino: Ino, stamp: u64| touched_at.get(&ino).is_some_and(|&g| g > stamp);
        for (i, w) in by_entry.iter_mut().enumerate() {
            // Written and not scrubbed since.
            let Some(w) = w.as_mut().filter(|w| w.stamp != 0) else {
                continue;
            };
            let young = w.stamp + SWEEP_EVERY > now;
            if young || *global_at > w.stamp {
                continue;
            }
            if !touched(w.parent, w.stamp) && (w.ino == 0 || !touched(w.ino, w.stamp)) {
                self.table.restamp(i, now);
                w.stamp = now;
            }
        }
        true
    }

    /// Publishes again the names changes voided, for each inode no change
    /// touched for [`SETTLED`]: a directory being filled (`tar x`,
    /// `rsync`) is published again once it is, not at each name (one that
    /// changes all the time never is). `false` if work is left (an inode
    /// not settled yet, or a change began meanwhile).
    fn refresh(&self, store: &Store) -> bool {
        let now = Instant::now();
        let (stale, left) = {
            let mut held = self.held.lock();
            let stale: Vec<Ino> = held
                .stale
                .iter()
                .filter(|(_, &last)| now - last >= SETTLED)
                .map(|(&ino, _)| ino)
                .collect();
            for ino in &stale {
                held.stale.remove(ino);
            }
            (stale, !held.stale.is_empty())
        };
        let names: Vec<(Ino, Box<[u8]>, Ino)> = {
            let held = self.held.lock();
            let mut entries: Vec<u32> = stale
                .iter()
                .flat_map(|ino| {
                    let by_ino = held.by_ino.get(ino).into_iter().flatten();
                    by_ino.chain(held.by_parent.get(ino).into_iter().flatten())
                })
                .copied()
                .collect();
            entries.sort_unstable();
            entries.dedup();
            entries
                .into_iter()
                .filter_map(|i| {
                    let w = held.by_entry[i as usize]?;
                    Some((w.parent, held.names[i as usize].clone(), w.ino))
                })
                .collect()
        };
        let mut interrupted = false;
        for (parent, name, was) in names {
            // After the change that voided it: a quiet stamp (else the
            // pass ends, for another once the change settled).
            let stamp = store.quiet_stamp().filter(|_| !interrupted);
            if let Some(stamp) = stamp {
                // The same answer made current (a name still missing, or
                // gone; the same inode, its attributes now); a name that
                // now names another inode, or one where none was (a
                // directory being filled), is left to whoever asks.
                match store.lookup(&Creds::root(), parent, &name) {
                    Ok(attr) if attr.ino == was => {
                        self.publish(store, (parent, &name), &attr, stamp, None)
                    }
                    Err(inode_store::Errno::ENOENT) => {
                        self.publish_absent(store, (parent, &name), stamp)
                    }
                    _ => {}
                }
            }
            interrupted |= !stamp.is_some_and(|s| store.still_quiet(s));
        }
        if interrupted {
            // Again once the change that interrupted has settled too.
            let mut held = self.held.lock();
            for ino in stale {
                held.stale.entry(ino).or_insert(now);
            }
        }
        !interrupted && !left
    }
}
