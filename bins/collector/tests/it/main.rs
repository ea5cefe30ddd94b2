//! Integration tests of the collector against a real Redis and the channel API fake served on
//! 127.0.0.1:0: whole jobs in process, a SIGKILL mid-collection with the real binary, flood
//! waits across two workers, resuming after a crash between a write and its checkpoint.

mod collect;
mod process;
mod support;
