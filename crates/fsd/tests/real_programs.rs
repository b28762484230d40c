//! Real programs on the mount: `tests/scripts/realprog.sh` builds a sample
//! tree (nested dirs, empty/odd-sized/sparse files, symlinks, hard links, a
//! FIFO, odd modes, an xattr; all times fixed) and runs cp -a, tar c/x, ls -lR,
//! find, du, stat, ln, mv, rm -rf, shell redirections and python (os.walk,
//! shutil.copytree) over it. Its output on btfuse must equal its output on
//! tmpfs byte for byte (the root path is replaced by "ROOT").

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn run_realprog(mnt: &Path, env: &[(&str, String)]) -> String {
    let root = mnt.join("rp");
    std::fs::create_dir(&root).expect("mkdir rp");
    let mut cmd = Command::new("bash");
    cmd.arg(scripts_dir().join("realprog.sh"))
        .arg(&root)
        .env("PYTHON", PYTHON);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_timeout(&mut cmd, Duration::from_secs(120));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s.push_str(&format!("### script exit {:?}\n", out.status.code()));
    s
}

fn real_programs(preload: bool, name: &str) {
    if !fuse_available(name) {
        return;
    }
    let mut env = Vec::new();
    if preload {
        match preload_lib() {
            Some(lib) => env.push(("LD_PRELOAD", lib.display().to_string())),
            None => {
                eprintln!("\n*** SKIPPED {name}: libbtfuse.so not built ***\n");
                return;
            }
        }
    }
    let tmp = TmpfsGuard::new("256M");
    let reference = run_realprog(tmp.path(), &[]);
    let bt = BtfuseGuard::new("256M");
    let got = run_realprog(bt.path(), &env);
    assert!(
        reference.lines().count() > 300,
        "reference run too short:\n{reference}"
    );
    assert_same_output(name, "tmpfs", &reference, "btfuse", &got);
}

#[test]
fn real_programs_match_tmpfs() {
    real_programs(false, "real_programs_match_tmpfs");
}

#[test]
fn real_programs_preload_match_tmpfs() {
    real_programs(true, "real_programs_preload_match_tmpfs");
}
