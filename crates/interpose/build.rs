//! Link options of `libbtfuse.so`.

fn main() {
    // Bind the library's references to its own exported functions (the
    // hooks calling one another, stdio's cookie callbacks) inside the
    // library: they need no symbol lookup when a process loads it (each
    // one is a search of every loaded object), and they cannot be
    // diverted by another preloaded library.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
}
