//! A file a process created read-only and holds open for writing
//! (`open(O_CREAT|O_RDWR, 0444)`) is handed to the kernel like any other
//! fast-path file: the holder's own reopen is refused by the file's mode,
//! so the daemon opens it with the handle's access mode and passes the
//! kernel fd (`proto::ops::KernelOpen`). Run as uid 65534, where the
//! kernel really refuses the reopen; the hostile side (a client asking for
//! more than its handle holds) is in `hostile.rs`.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(60);

static PROG: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// `scripts/readonly_handoff.c` as uid 65534 on a world-writable directory
/// (`mmap` read-write, a forked writer, an exec'd reader, `sendmsg` to
/// another process, and a write-only `O_APPEND` file of mode 0 shared with
/// a forked child): the output through the library equals tmpfs's.
#[test]
fn files_created_read_only_are_handed_to_the_kernel_as_on_tmpfs() {
    let test = "files_created_read_only_are_handed_to_the_kernel_as_on_tmpfs";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(prog) = compiled_c(&PROG, "readonly_handoff.c", test) else {
        return;
    };
    let prog = prog.to_str().unwrap();
    let run = |dir: &std::path::Path, preload: Option<&str>| {
        set_mode(dir, 0o1777);
        let mut cmd = command_as(Some(NOBODY), prog);
        cmd.arg(dir.join("f"));
        cmd.env_remove("LD_PRELOAD").env_remove("BTFUSE_DEBUG");
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib).env("BTFUSE_DEBUG", "1");
        }
        let o = run_timeout(&mut cmd, RUN);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        (format!("{out}### {:?}\n", o.status.code()), log)
    };
    let tmp = TmpfsGuard::new("16M");
    let (want, _) = run(tmp.path(), None);
    assert!(want.contains("mmap rw: ok"), "tmpfs itself: {want}");
    let bt = BtfuseGuard::new("16M");
    let (got, log) = run(bt.path(), Some(&lib));
    assert!(
        log.contains("channel connected"),
        "the fast path was not used:\n{log}"
    );
    assert_same_output(test, "tmpfs", &want, "preload", &got);
}
