//! The threads the statement check ([`super::sql_check`]) runs on: a few long-lived threads with a
//! stack of [`STACK_BYTES`] each, fed by a queue.
//!
//! Why threads of their own: parsing (libpg_query's C output of the tree), decoding (prost) and the
//! walk all recurse as deep as the text nests — `SELECT 1+1+…+1` of 60 terms (126 bytes) overflowed
//! a tokio worker's 2 MiB stack and aborted the server. A thread of known stack size makes the
//! depth a property of this module rather than of whoever calls. Switching stacks in place
//! (`stacker`) was tried and rejected: libpg_query sizes its own C stack-depth check from the
//! *thread's* stack (`pthread_getattr_np`), so on a foreign stack it falls back to 100 kB and
//! refuses statements (11 nested subqueries, in a debug build) that PostgreSQL itself accepts. On
//! these threads it measures the real stack and applies PostgreSQL's default of 2 MB, as the server
//! does, so the check accepts what the decoder's limit accepts, deterministically.
//!
//! The queue also keeps long texts (≈12 ms of CPU for 80 KB) off the async workers, which is what
//! tokio's blocking pool did for them before; short texts pay one hand-off (a few µs).

use std::sync::{Mutex, OnceLock, mpsc};

/// Stack of each check thread: the deepest tree the decoder accepts takes about 3 MiB in a debug
/// build, libpg_query's own check stops its C recursion at 2 MB; address space, touched only as
/// deep as a statement goes.
pub const STACK_BYTES: usize = 32 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// The check thread's job was lost (it panicked): the caller refuses the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the statement check failed unexpectedly")]
pub struct Lost;

/// The queue, with `available_parallelism` threads (at least 2) started on first use.
fn queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("sql-check-{index}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking job drops its answer channel (the caller sees `Lost`); the
                        // thread stays for the next one.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .expect("spawning a statement-check thread");
        }
        Mutex::new(sender)
    })
}

fn submit(job: Job) -> Result<(), Lost> {
    queue().lock().map_err(|_| Lost)?.send(job).map_err(|_| Lost)
}

/// Runs `job` on a check thread and waits for it (for synchronous callers and tests).
#[allow(dead_code)] // sql_check's blocking entry points
pub fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Lost> {
    let (answer, answered) = mpsc::sync_channel(1);
    submit(Box::new(move || {
        let _ = answer.send(job());
    }))?;
    answered.recv().map_err(|_| Lost)
}

/// Runs `job` on a check thread; the async task waits without holding its worker.
pub async fn run_async<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Lost> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    submit(Box::new(move || {
        let _ = answer.send(job());
    }))?;
    answered.await.map_err(|_| Lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_threads_with_the_promised_stack_and_a_panic_is_lost_not_fatal() {
        let name = run(|| std::thread::current().name().map(str::to_string)).unwrap();
        assert!(name.unwrap().starts_with("sql-check-"));
        // 4 MiB of stack used for real (twice a tokio worker's), measured by frame addresses.
        let deep = run(|| {
            fn recurse(top: usize, goal: usize) -> usize {
                let frame = std::hint::black_box([0u8; 512]);
                let here = frame.as_ptr() as usize;
                if top.abs_diff(here) >= goal {
                    1
                } else {
                    1 + recurse(top, goal) + frame[0] as usize
                }
            }
            let marker = [0u8; 1];
            let top = std::hint::black_box(&marker).as_ptr() as usize;
            recurse(top, 4 * 1024 * 1024)
        });
        assert!(deep.is_ok());
        assert_eq!(run(|| -> u8 { panic!("a job panics") }), Err(Lost));
        assert_eq!(run(|| 7), Ok(7));
    }
}
