//! The transport-free core both doors share, beside the store
//! (`inode_store`): the table of fast-path clients and their handles
//! ([`clients`]), path resolution on the store ([`resolve`]), one handler
//! per fast-path operation of the protocol table ([`handlers`]) and the
//! cache-invalidation trait ([`KernelCache`]) that the FUSE door implements
//! and the ring door uses. Nothing here knows fuser or shm-ring.

pub mod clients;
pub mod handlers;
mod kernel_cache;
pub mod public;
pub mod resolve;

pub use kernel_cache::KernelCache;
