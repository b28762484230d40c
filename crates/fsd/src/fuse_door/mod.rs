//! The kernel front door: adapts fuser to the core ([`FuseFs`]), implements
//! the core's cache-invalidation trait with fuser's notifier
//! ([`KernelNotifier`]) and keeps the kernel's view of files coherent with
//! the ring door's changes ([`coherence`]).

mod adapter;
pub mod coherence;
mod convert;
mod forgets;
mod held_open;
mod notifier;
pub mod uring;

pub use adapter::{FuseFs, MAX_IO};
pub use coherence::KernelPages;
pub use notifier::KernelNotifier;
