//! Process-wide state: lazy initialisation (discovery), the mount table,
//! the cwd filter, the umask and the fork epoch. Statics, and the mount
//! table with its per-mount state in memory sized at discovery (see
//! `mapped`); nothing runs at load time.

use core::cell::UnsafeCell;
use core::mem::{align_of, size_of, MaybeUninit};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::fdtable::FdTable;
use crate::mapped::{self, Mapping, Text};
use crate::path::{self, Comps};
use crate::sys;
use crate::timeline::{self, Mark};
use proto::mountinfo::{self, Capacity, MountEntry, MountTable};

/// Fd numbers the table can hold (fast-path fds above it are not made).
pub(crate) const MAX_FD: usize = 1 << 16;
/// Open file descriptions (fast-path opens alive at once).
pub(crate) const MAX_OFD: usize = 8192;

/// The fd table.
pub(crate) static FDS: FdTable<MAX_FD, MAX_OFD> = FdTable::new();

/// A static written only during initialisation (by the one thread that
/// runs it, before `INIT` is published with Release) and read-only after.
pub(crate) struct InitOnce<T>(UnsafeCell<T>);
// SAFETY: written once before publication (see `init`), then only read.
unsafe impl<T> Sync for InitOnce<T> {}

static TABLE: InitOnce<MountTable<'static>> = InitOnce(UnsafeCell::new(MountTable::empty()));

const UNINIT: u32 = 0;
const RUNNING: u32 = 1;
const READY: u32 = 2;
const OFF: u32 = 3;
#[link_section = ".data.btfuse_hot"]
static INIT: AtomicU32 = AtomicU32::new(UNINIT);
/// Whether `fopen`/`fdopen` streams on mount files are served by the
/// library (`BTFUSE_STDIO=0` leaves them to glibc, through the kernel).
static STDIO: AtomicBool = AtomicBool::new(true);

/// A yes/no fact worked out on first use, not at start-up, and forgotten
/// when what it depends on changes. The low bits hold the answer (or
/// none), the rest count the changes, so an answer worked out before a
/// change is never stored after it.
struct LazyFlag(AtomicU32);

impl LazyFlag {
    const UNKNOWN: u32 = 0;
    const NO: u32 = 1;
    const YES: u32 = 2;
    const STATE: u32 = 3;
    const CHANGE: u32 = 4;

    const fn new() -> LazyFlag {
        LazyFlag(AtomicU32::new(Self::UNKNOWN))
    }

    /// The fact, worked out by `work_out` if it is not known.
    fn get(&self, work_out: impl FnOnce() -> bool) -> bool {
        let v = self.0.load(Ordering::Relaxed);
        if v & Self::STATE != Self::UNKNOWN {
            return v & Self::STATE == Self::YES;
        }
        let yes = work_out();
        // A vfork child's cwd and credentials are its own.
        if in_vfork_child() {
            return yes;
        }
        let known = v | if yes { Self::YES } else { Self::NO };
        // Kept only if nothing changed meanwhile.
        let _ = self
            .0
            .compare_exchange(v, known, Ordering::Relaxed, Ordering::Relaxed);
        yes
    }

    /// What the fact depends on changed: work it out again next time.
    fn forget(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some((v & !Self::STATE).wrapping_add(Self::CHANGE))
            });
    }
}

/// Whether a relative path may name something on a mount: the cwd is on or
/// above a btfuse mount (most programs name only absolute paths).
#[link_section = ".data.btfuse_hot"]
static CWD_NEAR: LazyFlag = LazyFlag::new();

/// The process umask (tracked through the `umask` hook).
static UMASK: AtomicU32 = AtomicU32::new(UMASK_UNKNOWN);

/// `UMASK` before the first file creation asked for it.
const UMASK_UNKNOWN: u32 = u32::MAX;

/// Bumped in the child after `fork`, and after a credential change:
/// handles (and channels) of earlier epochs belong to the parent process or
/// to the old identity and must not be used.
#[link_section = ".data.btfuse_hot"]
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// `access(2)` checks with the real uid/gid and, in place of the effective
/// capabilities, none (real uid not 0) or the permitted ones (real uid 0)
/// (`access_override_creds`); the daemon checks with the effective ids and
/// capabilities it was given. While they differ, `access` and `faccessat`
/// without `AT_EACCESS` go to the kernel.
#[link_section = ".data.btfuse_hot"]
static ACCESS_BY_KERNEL: LazyFlag = LazyFlag::new();

/// Per-mount runtime state beside the parsed table. All zero is its
/// initial state (it lives in a fresh mapping).
pub(crate) struct MountRt {
    /// `st_dev` of the mount.
    pub(crate) dev: AtomicU64,
    /// Monotonic ns until which the mount counts as dead (0 = alive).
    pub(crate) dead_until: AtomicU64,
    /// The mount's channel slots, made on first use: opaque here, a
    /// `channel::Slots` to the `channel` module, which alone makes and
    /// reads them (so `state` needs nothing of `channel`).
    pub(crate) channels: AtomicPtr<core::ffi::c_void>,
    /// The mount's public table as this process mapped it (see `public`).
    pub(crate) table: TableRt,
}

/// A mount's public table as this process mapped it (made and read by the
/// `public` module; the page at its start is the mount's generation page
/// until a channel brings one, see [`table_page`]). All zero: not tried.
pub(crate) struct TableRt {
    /// The mapping: null before the first try, [`NO_TABLE`] if there is
    /// none to map.
    pub(crate) base: AtomicPtr<u8>,
    /// Descriptor of the page's file + 1 (0: none), for its lock.
    pub(crate) fd: core::sync::atomic::AtomicI32,
    /// Files open from the table.
    pub(crate) open: core::sync::atomic::AtomicU32,
}

/// [`TableRt::base`] of a mount without a table to map.
pub(crate) const NO_TABLE: *mut u8 = core::ptr::dangling_mut::<u8>();

/// The generation page at the start of `mount`'s public table, if this
/// process mapped it.
pub(crate) fn table_page(mount: usize) -> Option<&'static proto::GenPage> {
    let p = MOUNTS[mount].table.base.load(Ordering::Acquire);
    // SAFETY: a mapping of `proto::public::FILE_LEN` bytes of the daemon's
    // page file, made once (`public`) and never unmapped; the page is its
    // first GEN_PAGE_LEN bytes, page-aligned.
    (!p.is_null() && p != NO_TABLE).then(|| unsafe { &*p.cast::<proto::GenPage>() })
}

/// The runtime state of every mount of the table, indexed like
/// `table().mounts()` (empty before initialisation).
pub(crate) struct MountRts(InitOnce<&'static [MountRt]>);

impl MountRts {
    /// All of them.
    pub(crate) fn all(&self) -> &'static [MountRt] {
        // SAFETY: written only in `init` before INIT becomes READY
        // (Release); read after observing READY (Acquire), or after seeing
        // a channel in use, which is only made after READY.
        unsafe { *self.0 .0.get() }
    }
}

impl core::ops::Index<usize> for MountRts {
    type Output = MountRt;

    fn index(&self, m: usize) -> &MountRt {
        &self.all()[m]
    }
}

#[link_section = ".data.btfuse_hot"]
pub(crate) static MOUNTS: MountRts = MountRts(InitOnce(UnsafeCell::new(&[])));

/// How long a mount whose daemon could not be reached is left to the
/// kernel before the library tries to connect again.
const DEAD_RETRY_NS: u64 = 5_000_000_000;

/// Whether streams on mount files are the library's (see [`STDIO`]).
pub(crate) fn stdio_enabled() -> bool {
    STDIO.load(Ordering::Relaxed)
}

/// The mount table (empty before initialisation).
pub(crate) fn table() -> &'static MountTable<'static> {
    // SAFETY: only written in `init` before INIT becomes READY (Release);
    // callers reach here after observing READY (Acquire) in `ready`.
    unsafe { &*TABLE.0.get() }
}

/// The mountpoint text of mount `m`.
pub(crate) fn mountpoint(m: usize) -> &'static [u8] {
    let t = table();
    t.text(&t.mounts()[m])
}

/// Set when the mount table came from the daemons' registry.
#[link_section = ".data.btfuse_hot"]
static FROM_REGISTRY: AtomicBool = AtomicBool::new(false);

/// The mountpoint of mount `m` to name in a hello (see [`proto::Hello`]):
/// the registry's text, which the daemon checks against its own, or
/// nothing when the table came from this process's mountinfo (another
/// view may name the mount differently; that table is live anyway).
pub(crate) fn registry_mountpoint(m: usize) -> &'static [u8] {
    if FROM_REGISTRY.load(Ordering::Relaxed) {
        mountpoint(m)
    } else {
        b""
    }
}

/// The current fork epoch.
pub(crate) fn epoch() -> u32 {
    EPOCH.load(Ordering::Relaxed)
}

/// Starts a new epoch (see [`EPOCH`]).
pub(crate) fn new_epoch() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    IMAGE.store(0, Ordering::Relaxed);
}

/// This process image's random number for the daemon (`proto::Hello::image`),
/// drawn on first use and again after a new epoch (fork, credential change).
#[link_section = ".data.btfuse_hot"]
static IMAGE: AtomicU64 = AtomicU64::new(0);

/// See [`IMAGE`].
pub(crate) fn image() -> u64 {
    let v = IMAGE.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    let r = sys::random_u64();
    // Threads connecting their first channels at once must all name the
    // same image, or the daemon files their channels as different clients
    // (and one thread's handles are unknown on another's channel): the
    // first value stored wins.
    match IMAGE.compare_exchange(0, r, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => r,
        Err(first) => first,
    }
}

/// Turns the fast path off for good in this process (every call goes to
/// the kernel from now on): used when the process takes an identity the
/// daemon cannot learn from its peer credentials (`setfsuid`).
pub(crate) fn disable() {
    INIT.store(OFF, Ordering::Release);
}

/// Set for good once the process changed its root or mount namespace
/// (`crate::namespace`): paths from the root or the cwd may name other
/// files than the mount table says, so the kernel resolves them. Memory
/// like the rest of the state: a forked child (which inherits the root)
/// inherits it, an `exec` starts without it.
#[link_section = ".data.btfuse_hot"]
static PATHS_BY_KERNEL: AtomicBool = AtomicBool::new(false);

/// Whether paths from the root or the cwd go to the kernel (see
/// [`PATHS_BY_KERNEL`]).
#[inline]
pub(crate) fn paths_by_kernel() -> bool {
    PATHS_BY_KERNEL.load(Ordering::Relaxed) || in_vfork_child()
}

/// Leaves paths from the root or the cwd to the kernel for the rest of the
/// process image (see [`PATHS_BY_KERNEL`]).
pub(crate) fn leave_paths_to_kernel() {
    PATHS_BY_KERNEL.store(true, Ordering::Relaxed);
}

/// Set by a real `vfork` (see `crate::process`) just before the system
/// call, and cleared by the parent's first look once its child ran: while
/// it is set, a process other than [`VFORK_PARENT`] is the child, which
/// runs in the parent's memory until it execs or exits and so must write
/// nothing of the library's state: it leaves every call to the kernel.
#[link_section = ".data.btfuse_hot"]
static VFORKING: AtomicBool = AtomicBool::new(false);
static VFORK_PARENT: AtomicI32 = AtomicI32::new(0);
/// Set by the child's first look: the `vfork` took place, so the parent,
/// which runs again only once its child has exec'd or exited, may clear
/// the mark (a signal handler of the parent that looks between the mark
/// and the system call must not).
static VFORK_CHILD_RAN: AtomicBool = AtomicBool::new(false);

/// Another thread of execution shares the process's memory (a
/// `pthread_create`, a `clone(CLONE_VM)` called directly): a `vfork` child
/// would share it with threads that go on running, so `vfork` is a
/// `fork` from then on (see `crate::process`).
static MEMORY_SHARED: AtomicBool = AtomicBool::new(false);

/// Notes that another thread shares the process's memory (see
/// [`MEMORY_SHARED`]).
pub(crate) fn note_memory_shared() {
    MEMORY_SHARED.store(true, Ordering::Relaxed);
}

/// Whether another thread ever shared the process's memory (see
/// [`MEMORY_SHARED`]).
pub(crate) fn memory_shared() -> bool {
    MEMORY_SHARED.load(Ordering::Relaxed)
}

/// Marks the process as about to `vfork` (see [`VFORKING`]).
pub(crate) fn start_vfork() {
    VFORK_PARENT.store(sys::getpid(), Ordering::Relaxed);
    VFORK_CHILD_RAN.store(false, Ordering::Relaxed);
    VFORKING.store(true, Ordering::Relaxed);
}

/// Clears the `vfork` mark of a parent that is about to `fork` (its
/// prepare handler: the parent runs, so any vfork child of its own has
/// exec'd or exited, whether or not it looked); the forked child would
/// take itself for the vfork one.
pub(crate) fn end_vfork_before_fork() {
    if VFORKING.load(Ordering::Relaxed) && sys::getpid() == VFORK_PARENT.load(Ordering::Relaxed) {
        VFORKING.store(false, Ordering::Relaxed);
    }
}

/// Whether this is a `vfork` child still running in its parent's memory
/// (see [`VFORKING`]).
#[inline]
pub(crate) fn in_vfork_child() -> bool {
    VFORKING.load(Ordering::Relaxed) && vfork_child_now()
}

/// [`in_vfork_child`] once a `vfork` was marked: asks the kernel who we
/// are. The parent clears the mark once its child ran (see
/// [`VFORK_CHILD_RAN`]; after a child that made no hooked call the mark
/// stays, and the parent asks at each look: slower, never wrong).
#[cold]
#[inline(never)]
fn vfork_child_now() -> bool {
    if sys::getpid() != VFORK_PARENT.load(Ordering::Relaxed) {
        VFORK_CHILD_RAN.store(true, Ordering::Relaxed);
        return true;
    }
    if VFORK_CHILD_RAN.load(Ordering::Relaxed) {
        VFORKING.store(false, Ordering::Relaxed);
    }
    false
}

/// Whether `access`-style checks (real ids) must go to the kernel.
pub(crate) fn access_by_kernel() -> bool {
    ACCESS_BY_KERNEL.get(access_creds_differ)
}

/// The process changed its credentials (see [`ACCESS_BY_KERNEL`]).
pub(crate) fn ids_changed() {
    ACCESS_BY_KERNEL.forget();
}

/// Whether `access(2)` would check with other credentials than the
/// effective ones (the kernel's `access_need_override_creds`): real and
/// effective ids differ, or the capabilities would change (raw syscalls;
/// an error counts as yes: the kernel is always right).
fn access_creds_differ() -> bool {
    let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
    let (mut rg, mut eg, mut sg) = (0u32, 0u32, 0u32);
    let ids = match (
        sys::sc!(
            libc::SYS_getresuid,
            &mut r as *mut u32,
            &mut e as *mut u32,
            &mut s as *mut u32
        ),
        sys::sc!(
            libc::SYS_getresgid,
            &mut rg as *mut u32,
            &mut eg as *mut u32,
            &mut sg as *mut u32
        ),
    ) {
        (Ok(_), Ok(_)) => r != e || rg != eg,
        _ => true,
    };
    ids || match sys::capabilities() {
        Some((effective, permitted)) if r == 0 => effective != permitted,
        Some((effective, _)) => effective != 0,
        None => true,
    }
}

/// The process umask.
///
/// Read from `/proc/self/status` on first use only (most programs never
/// create a file), then tracked through the `umask` hook.
pub(crate) fn umask() -> u32 {
    match UMASK.load(Ordering::Relaxed) {
        UMASK_UNKNOWN => {
            read_umask();
            match UMASK.load(Ordering::Relaxed) {
                // Unreadable: the usual default.
                UMASK_UNKNOWN => 0o022,
                m => m,
            }
        }
        m => m,
    }
}

/// Records a new umask (from the `umask` hook).
pub(crate) fn set_umask(m: u32) {
    UMASK.store(m & 0o777, Ordering::Relaxed);
}

/// Whether the fast path is on and has mounts: runs discovery on first call.
/// While another thread (or this one, re-entered) initialises, answers
/// false: the call then goes to the kernel, which is always correct.
///
/// `on_first_ready` runs once, when discovery found mounts, before any
/// call can be told `true`: the layer above registers there what only
/// matters once the process can hold fast-path files (the fork handlers),
/// so that this module names nothing above it. A constant function, it
/// costs nothing on the common path.
#[inline]
pub(crate) fn ready(on_first_ready: fn()) -> bool {
    // Acquire: pairs with the Release store of READY in `init`.
    match INIT.load(Ordering::Acquire) {
        READY => true,
        UNINIT => init(on_first_ready),
        _ => false,
    }
}

/// Whether mount `m` may be tried now.
pub(crate) fn mount_alive(m: usize) -> bool {
    let d = MOUNTS[m].dead_until.load(Ordering::Relaxed);
    d == 0 || sys::monotonic_ns() >= d
}

/// Leaves mount `m` to the kernel for a while.
pub(crate) fn mark_dead(m: usize) {
    MOUNTS[m].dead_until.store(
        sys::monotonic_ns().saturating_add(DEAD_RETRY_NS).max(1),
        Ordering::Relaxed,
    );
}

#[cold]
fn init(on_first_ready: fn()) -> bool {
    if INIT
        .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return INIT.load(Ordering::Acquire) == READY;
    }
    let saved = sys::errno();
    let ok = init_inner();
    if ok {
        on_first_ready();
    }
    sys::set_errno(saved);
    // Release: publishes the table, mounts and cwd state written above.
    INIT.store(if ok { READY } else { OFF }, Ordering::Release);
    ok
}

fn getenv(name: &[u8]) -> Option<&'static [u8]> {
    // SAFETY: `name` is NUL-terminated; getenv returns a pointer into the
    // environment or null.
    let p = unsafe { libc::getenv(name.as_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the environment.
    Some(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes())
}

fn init_inner() -> bool {
    if getenv(b"BTFUSE_DEBUG\0").is_some_and(|v| !v.is_empty() && v != b"0") {
        sys::enable_debug();
        timeline::mark(Mark::Init);
    }
    if getenv(b"BTFUSE_STDIO\0") == Some(b"0") {
        STDIO.store(false, Ordering::Relaxed);
    }
    if getenv(b"BTFUSE_DISABLE\0") == Some(b"1") {
        sys::debug(&[b"btfuse: disabled by BTFUSE_DISABLE=1"]);
        return false;
    }
    // A registry usually fits here; mountinfo, read only without one, is
    // read straight into a mapping.
    let mut small = [0u8; 2048];
    let Some(text) =
        registry_text(&mut small).or_else(|| mapped::read_file(b"/proc/self/mountinfo\0", &mut []))
    else {
        return false;
    };
    let lines = match FROM_REGISTRY.load(Ordering::Relaxed) {
        // Checked by `registry_text`.
        true => mountinfo::parse_registry(text.bytes()).map_or(&[][..], |(_, l)| l),
        false => text.bytes(),
    };
    if !build_table(lines) {
        return false;
    }
    drop(text);
    timeline::mark(Mark::Discovered);
    let t = table();
    for (m, rt) in t.mounts().iter().zip(MOUNTS.all()) {
        rt.dev
            .store(mountinfo::makedev(m.major, m.minor), Ordering::Relaxed);
        sys::debug(&[b"btfuse: mount ", t.text(m)]);
    }
    true
}

/// The run directory (`$BTFUSE_RUN_DIR` or `proto::RUN_DIR`): daemon
/// sockets and the mount registry. A set-uid (secure-execution) process
/// ignores the variable: whoever sets it could otherwise declare any path a
/// btfuse mount served by a daemon of theirs.
pub(crate) fn run_dir() -> &'static [u8] {
    // SAFETY: getauxval has no preconditions.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    match getenv(b"BTFUSE_RUN_DIR\0") {
        Some(v) if !v.is_empty() && !secure => v,
        _ => proto::RUN_DIR.as_bytes(),
    }
}

/// The path of file `name` of the run directory, NUL-terminated, in
/// `buf`; `None` if it does not fit.
pub(crate) fn run_dir_file<'a>(name: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let dir = run_dir();
    let len = dir.len() + 1 + name.len();
    let path = buf.get_mut(..=len)?;
    path[..dir.len()].copy_from_slice(dir);
    path[dir.len()] = b'/';
    path[dir.len() + 1..len].copy_from_slice(name);
    path[len] = 0;
    Some(path)
}

/// Discovery through the daemons' registry (see `proto::mountinfo`): its
/// text, or `None` if there is no registry for this process's view (then
/// mountinfo decides). Sets [`FROM_REGISTRY`].
fn registry_text(small: &mut [u8]) -> Option<Text<'_>> {
    let mut path = [0u8; 320];
    let path = run_dir_file(mountinfo::REGISTRY_FILE.as_bytes(), &mut path)?;
    let text = mapped::read_file(path, small)?;
    let (view, _) = mountinfo::parse_registry(text.bytes())?;
    if view != own_view()? {
        sys::debug(&[b"btfuse: registry of another view, reading mountinfo"]);
        return None;
    }
    FROM_REGISTRY.store(true, Ordering::Relaxed);
    Some(text)
}

/// Bytes of [`SMALL`].
const SMALL_TABLE: usize = 8192;

/// Storage of a mount table that fits (the usual registry of a few
/// mounts), saving a new process the `mmap` (measured: 6 µs here).
#[repr(C, align(64))]
struct SmallTable([u8; SMALL_TABLE]);

static SMALL: InitOnce<SmallTable> = InitOnce(UnsafeCell::new(SmallTable([0; SMALL_TABLE])));

/// Parses `lines` (mountinfo lines) into the mount table, in memory sized
/// for them, with the runtime state of each mount beside it: whether it
/// names a btfuse mount. Runs once, before INIT is READY.
fn build_table(lines: &[u8]) -> bool {
    let need = Capacity::of(lines);
    // One mapping, kept for the life of the process: the runtime states
    // (8-aligned, at the page-aligned start), the entries, the text.
    let entries_at =
        (need.entries * size_of::<MountRt>()).next_multiple_of(align_of::<MountEntry>());
    let text_at = entries_at + need.entries * size_of::<MountEntry>();
    let base = if text_at + need.text <= SMALL_TABLE {
        SMALL.0.get().cast::<u8>()
    } else {
        let Some(map) = Mapping::new(text_at + need.text) else {
            return false;
        };
        map.leak()
    };
    // SAFETY: three disjoint ranges of zero-filled memory that is never
    // freed nor otherwise used (`SMALL`, used once, here, or a leaked
    // mapping), each aligned for its type (both are page-aligned,
    // `entries_at` is rounded up); all-zero is a valid `MountRt` (atomics
    // and a null pointer), `MountEntry` (integers) and `u8`. Nothing else
    // refers to them.
    let (rts, entries, arena) = unsafe {
        (
            core::slice::from_raw_parts(base.cast::<MountRt>(), need.entries),
            core::slice::from_raw_parts_mut(
                base.add(entries_at).cast::<MountEntry>(),
                need.entries,
            ),
            core::slice::from_raw_parts_mut(base.add(text_at), need.text),
        )
    };
    let mut t = MountTable::new(entries, arena);
    mountinfo::parse(lines, &mut t);
    let n = t.mounts().len();
    // SAFETY: nobody reads TABLE or MOUNTS before INIT is READY.
    unsafe {
        *TABLE.0.get() = t;
        *MOUNTS.0 .0.get() = &rts[..n];
    }
    n > 0
}

/// This process's view of the tree (see [`mountinfo::View`]): one `statx`.
fn own_view() -> Option<mountinfo::View> {
    // SAFETY: all-zero is a valid statx buffer for the kernel to fill.
    let mut stx: libc::statx = unsafe { core::mem::zeroed() };
    sys::sc!(
        libc::SYS_statx,
        libc::AT_FDCWD,
        c"/".as_ptr(),
        0,
        mountinfo::VIEW_STATX_MASK,
        &mut stx as *mut libc::statx
    )
    .ok()?;
    mountinfo::View::from_statx(
        stx.stx_mask,
        stx.stx_mnt_id,
        (stx.stx_dev_major, stx.stx_dev_minor),
        stx.stx_ino,
    )
}

fn read_umask() {
    let mut buf = [0u8; 2048];
    let Ok(n) = sys::read_file(b"/proc/self/status\0", &mut buf) else {
        return;
    };
    for line in buf[..n].split(|&b| b == b'\n') {
        if let Some(v) = line.strip_prefix(b"Umask:") {
            let mut m = 0u32;
            for &c in v.iter().filter(|c| !c.is_ascii_whitespace()) {
                if !(b'0'..=b'7').contains(&c) {
                    return;
                }
                m = m * 8 + (c - b'0') as u32;
            }
            set_umask(m);
            return;
        }
    }
}

/// The kernel's cwd (`getcwd(2)`, no FUSE round trip: the kernel answers
/// from its dentry cache) into `buf`; its length, or `None` when it is not
/// reachable or too long.
pub(crate) fn kernel_cwd(buf: &mut [MaybeUninit<u8>; proto::PATH_MAX]) -> Option<&[u8]> {
    let r = sys::sc!(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()).ok()?;
    // The kernel returns the length including the NUL.
    let n = (r as usize).checked_sub(1)?.min(buf.len());
    // SAFETY: the kernel wrote the path's `n` bytes (and a NUL).
    let cwd: &[u8] = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) };
    cwd.first().is_some_and(|&b| b == b'/').then_some(cwd)
}

/// Chdirs so far (see [`cwd_epoch`]).
#[link_section = ".data.btfuse_hot"]
static CWD_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Forgets the cwd filter after a chdir/fchdir: the next relative path
/// works it out again.
pub(crate) fn cwd_changed() {
    CWD_EPOCH.fetch_add(1, Ordering::Release);
    CWD_NEAR.forget();
}

/// The number of chdirs so far: what was known of the cwd under an
/// earlier number may be wrong.
pub(crate) fn cwd_epoch() -> u64 {
    CWD_EPOCH.load(Ordering::Acquire)
}

/// Works out the cwd filter: whether the kernel's cwd is on or above a mount.
/// Once per cwd, and never inlined: its `PATH_MAX` buffer would make every
/// caller's frame one the compiler probes page by page.
#[cold]
#[inline(never)]
fn near_cwd() -> bool {
    let mut buf = [const { MaybeUninit::uninit() }; proto::PATH_MAX];
    let Some(cwd) = kernel_cwd(&mut buf) else {
        // Unknown cwd: let the kernel resolve relative paths.
        return false;
    };
    // Canonical already, but without a trailing slash ("/" -> "").
    let cwd = if cwd == b"/" { &cwd[..0] } else { cwd };
    let t = table();
    path::classify(t, Comps::new(cwd, b"")).is_some()
        || t.mounts()
            .iter()
            .any(|m| mountinfo::is_under(t.text(m), cwd))
}

/// Whether relative paths must be classified (see [`CWD_NEAR`]).
pub(crate) fn cwd_near() -> bool {
    CWD_NEAR.get(near_cwd)
}
