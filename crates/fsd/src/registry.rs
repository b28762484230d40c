//! The mount registry in the run directory (format and rationale in
//! `proto::mountinfo`): a filtered copy of this mount namespace's
//! mountinfo that preloaded processes read instead of mountinfo itself.
//!
//! Every daemon rewrites it when it starts serving, whenever the mount
//! table changes (a watcher thread polls `/proc/self/mountinfo`, which
//! reports every change), and after its own unmount. All daemons of one
//! namespace compute the same content from the same mount table; writers
//! take an `flock` and replace the file by `rename`, so a reader always
//! sees one whole version. Until a watcher has rewritten it (well under a
//! millisecond after a change), a process may still see the previous
//! version: a mount made *inside* a btfuse mount is honoured only from
//! then on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use proto::mountinfo::{self, Capacity, MountEntry, MountTable, View, REGISTRY_FILE};

/// The view this process has (see [`View`]): one `statx` of `/`.
fn own_view() -> io::Result<View> {
    // SAFETY: all-zero is a valid statx buffer for the kernel to fill.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a buffer of the right type.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            mountinfo::VIEW_STATX_MASK,
            &mut stx,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    View::from_statx(
        stx.stx_mask,
        stx.stx_mnt_id,
        (stx.stx_dev_major, stx.stx_dev_minor),
        stx.stx_ino,
    )
    .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The registry's content for the mount table `text`.
fn content(text: &[u8], view: &View) -> Vec<u8> {
    let need = Capacity::of(text);
    let mut entries = vec![MountEntry::default(); need.entries];
    let mut arena = vec![0u8; need.text];
    let mut table = MountTable::new(&mut entries, &mut arena);
    mountinfo::parse(text, &mut table);
    let mut out = vec![0u8; 80];
    let n = mountinfo::registry_header(view, &mut out);
    out.truncate(n);
    for line in mountinfo::registry_lines(text, &table) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// Rewrites the registry in `run_dir` from the current mount table.
pub fn refresh(run_dir: &Path) -> io::Result<()> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(run_dir.join(".mounts.lock"))?;
    // SAFETY: flock on an fd we own; released when `lock` closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Read the table under the lock: the last writer saw the newest table.
    let text = std::fs::read("/proc/self/mountinfo")?;
    let path = run_dir.join(REGISTRY_FILE);
    let data = content(&text, &own_view()?);
    let tmp = run_dir.join(format!(".{REGISTRY_FILE}.{}", std::process::id()));
    // A leftover of a killed daemon with our pid goes first; then the file
    // is created anew, never followed through a planted link.
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(&data)?;
    drop(f);
    std::fs::rename(&tmp, &path)
}

/// Keeps the registry in `run_dir` current from a thread of its own.
pub fn watch(run_dir: PathBuf) -> io::Result<()> {
    let mounts = File::open("/proc/self/mountinfo")?;
    std::thread::Builder::new()
        .name("btfuse-registry".into())
        .spawn(move || loop {
            let mut p = libc::pollfd {
                fd: mounts.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd. Each change of the mount table
            // reports POLLPRI | POLLERR once.
            let n = unsafe { libc::poll(&mut p, 1, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::warn!("mount registry watcher stopped: {e}");
                return;
            }
            if let Err(e) = refresh(&run_dir) {
                log::warn!("cannot update the mount registry: {e}");
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_keeps_btfuse_mounts_and_what_lies_under_them() {
        let text = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
            40 22 0:40 / /mnt/bt rw - fuse.btfuse btfuse rw\n\
            41 22 0:41 / /tmp rw - tmpfs tmpfs rw\n\
            42 40 0:42 / /mnt/bt/sub rw - tmpfs tmpfs rw\n";
        let view = View {
            root_mount: 1,
            unique_id: true,
            root_dev: 2,
            root_ino: 3,
        };
        let data = content(text, &view);
        let (got, lines) = mountinfo::parse_registry(&data).unwrap();
        assert_eq!(got, view);
        assert_eq!(
            lines,
            &b"40 22 0:40 / /mnt/bt rw - fuse.btfuse btfuse rw\n\
               42 40 0:42 / /mnt/bt/sub rw - tmpfs tmpfs rw\n"[..]
        );
    }

    #[test]
    fn refresh_writes_a_registry_for_this_view() {
        let dir = std::env::temp_dir().join(format!("btfuse-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        refresh(&dir).unwrap();
        let data = std::fs::read(dir.join(REGISTRY_FILE));
        std::fs::remove_dir_all(&dir).unwrap();
        // Whatever is mounted here, the header names our own view.
        let data = data.unwrap();
        let (view, _) = mountinfo::parse_registry(&data).unwrap();
        assert_eq!(view, own_view().unwrap());
    }
}
