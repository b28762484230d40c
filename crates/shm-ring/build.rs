//! Declares the `loom` cfg so `cfg(loom)` does not trip `unexpected_cfgs`.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
