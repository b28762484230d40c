//! Preloaded python programs the tests run (with their timeouts).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use super::*;

/// A python loop for a preloaded client: write, read back, stat and list
/// files in directory `argv[1]` until file `argv[2]` exists; prints its
/// iteration count.
pub const PRELOADED_LOOP: &str = r#"
import os, sys, time
d, stop = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
i = 0
end = time.time() + 120
while not os.path.exists(stop) and time.time() < end:
    f = os.path.join(d, "p%d" % (i % 16))
    data = ("pre %d\n" % i) * (1 + i % 50)
    with open(f, "w") as fh:
        fh.write(data)
    with open(f) as fh:
        assert fh.read() == data, f
    assert os.stat(f).st_size == len(data)
    assert len(os.listdir(d)) >= 1
    i += 1
print(i)
"#;

/// Longest wait for a python helper's answer (a busy machine).
pub const PY_ANSWER: Duration = Duration::from_secs(120);

/// Runs python `script` with `arg`, `lib` preloaded, as `uid` (`None`:
/// this process's).
pub fn preloaded_python_as(uid: Option<u32>, lib: &str, script: &str, arg: &Path) -> Output {
    run_timeout(
        command_as(uid, PYTHON)
            .args(["-c", script])
            .arg(arg)
            .env("LD_PRELOAD", lib),
        PY_ANSWER,
    )
}

/// Python that starts two writer processes with `f = d = sys.argv[1]`:
/// `fast` (with the library the script runs with) and `slow` (without it:
/// through the kernel). `change(writer, code)` has one run `code` and
/// returns once it is done; `stop_writers()` ends both. Prepend it to a
/// script that opens files only after it (a fork while a file is open
/// would make that file a kernel fd in the script).
pub const TWO_WRITERS: &str = r#"
import os, subprocess, sys
f = d = sys.argv[1]
WRITER = """
import os, sys
f = d = sys.argv[1]
for line in sys.stdin:
    exec(line)
    print("done", flush=True)
"""
kernel = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
fast, slow = (subprocess.Popen([sys.executable, "-c", WRITER, f], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
              for env in (dict(os.environ), kernel))
def change(writer, code):
    writer.stdin.write(code + "\n")
    writer.stdin.flush()
    assert writer.stdout.readline() == "done\n"
def stop_writers():
    for w in (fast, slow):
        w.stdin.close()
        w.wait()
"#;

/// Runs python `script` with `arg`, `lib` preloaded.
pub fn preloaded_python(lib: &str, script: &str, arg: &Path) -> Output {
    preloaded_python_as(None, lib, script, arg)
}

/// [`preloaded_python`] that must succeed: its output.
pub fn preloaded_python_ok(lib: &str, script: &str, arg: &Path) -> String {
    preloaded_python_args_ok(lib, script, &[arg.as_os_str()])
}

/// Python `script` with `args`, `lib` preloaded, which must succeed: its
/// output.
pub fn preloaded_python_args_ok(lib: &str, script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = run_timeout(
        Command::new(PYTHON)
            .args(["-c", script])
            .args(args)
            .env("LD_PRELOAD", lib),
        PY_ANSWER,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    text
}

/// The preloaded library and a fresh mount of `size` for test `test`;
/// `None` when the test is skipped (no root, FUSE or library).
pub fn preloaded_mount(test: &str, size: &str) -> Option<(String, BtfuseGuard)> {
    let lib = preload_or_skip(test)?;
    Some((lib, BtfuseGuard::new(size)))
}
