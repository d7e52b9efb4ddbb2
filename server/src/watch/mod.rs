//! The reload engine shared by every watched file: tokens.yaml, users.yaml, the session key, kb.db
//! and the database URL file.
//!
//! Instances share these files read-only on a volume; an operator (or `postgres-mcp sync`, or the
//! kubelet) replaces them, and every instance must pick the change up quickly, without a restart, and
//! without ever serving a broken file. One mechanism does that for all of them:
//!
//! 1. inotify (via notify) watches the *parent directory*, not the file: editors and our CLI replace
//!    files by rename, and Kubernetes swaps a `..data` symlink, which a watch on the file would miss;
//! 2. only events that can change a watched file's content wake it, and only that file
//!    ([`events`]); reads never do, or a reload's own reads would trigger the next reload;
//! 3. after a brief settle, the file's worker compares its `stat` signature ([`signature`]) and reads
//!    it only if that changed; a read stops at the digest if the content is the one served, else
//!    parses and validates the whole new content and swaps it in with one atomic pointer store; an
//!    invalid file leaves the last good value serving and records the error for `/health`, metrics
//!    and one log line ([`watched`]);
//! 4. a periodic check (`watch.poll_interval`, a `stat` per file) catches what inotify cannot see:
//!    writes by other NFS/EFS/SMB clients, queue overflows, a replaced directory ([`engine`]).
//!
//! Every file has its own worker, so a large kb.db being verified never delays a credential change.
//! Readers take an `Arc` snapshot per request ([`Watched::current`]), so in-flight requests finish on
//! the content they started with and a reload never waits for them.

mod engine;
mod events;
mod signature;
mod watched;

pub use engine::{WatchEngine, is_network_filesystem};
pub use signature::{RACY_WINDOW, Signature};
pub use watched::{
    FileStatus, Generation, Loaded, Loader, OpenError, ReloadOutcome, Reloadable, Served, TextLoader, Watched,
};
