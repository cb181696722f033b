//! The threads that read and write the shards of a stripe at once: a fixed set of
//! workers blocking on a queue. A worker with nothing to do sleeps on a condition
//! variable; it never spins (rayon's pool, used before, yielded in a loop while idle:
//! about 90 sched_yield calls per small file imported).
//!
//! [`IoPool::map`] and [`IoPool::join`] run closures that borrow from the caller: the
//! caller runs the first itself, queues the others, runs those of them no worker has
//! taken yet, and returns only when all of its jobs have run, so the borrows outlive
//! them. A job that panics is caught (the worker lives on) and the panic is raised again
//! in the caller, as if it had run there. [`IoPool::spawn`] queues a job that owns what it
//! uses (the write-behind).

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    jobs: VecDeque<Job>,
    is_closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pool of blocking I/O threads.
pub(super) struct IoPool {
    shared: Arc<Shared>,
}

/// The jobs of one [`IoPool::run_scoped`] call still running, and the first panic.
struct Latch {
    state: Mutex<(usize, Option<Box<dyn Any + Send>>)>,
    done: Condvar,
}

impl Latch {
    fn finish(&self, panic: Option<Box<dyn Any + Send>>) {
        let mut state = lock(&self.state);
        state.0 -= 1;
        if state.1.is_none() {
            state.1 = panic;
        }
        if state.0 == 0 {
            self.done.notify_all();
        }
    }

    /// Waits until every job finished; the first panic, if any.
    fn wait(&self) -> Option<Box<dyn Any + Send>> {
        let mut state = lock(&self.state);
        while state.0 > 0 {
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.1.take()
    }
}

impl IoPool {
    /// Starts `threads` workers named `argosfs-io-N`.
    pub(super) fn new(threads: usize) -> std::io::Result<IoPool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                is_closing: false,
            }),
            work: Condvar::new(),
        });
        for i in 0..threads {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("argosfs-io-{i}"))
                .spawn(move || work(&shared))?;
        }
        Ok(IoPool { shared })
    }

    fn push(&self, job: Job) {
        lock(&self.shared.queue).jobs.push_back(job);
        self.shared.work.notify_one();
    }

    /// Runs `job` on a worker, some time later.
    pub(super) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.push(Box::new(move || {
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a background I/O job panicked");
            }
        }));
    }

    /// Runs every job, the first on this thread and the others on the pool, and returns
    /// once all have run. While it waits, this thread runs its own jobs that no worker
    /// has taken yet, never another caller's: it may hold locks (the gate, a file's
    /// data) that another caller's job would wait for.
    fn run_scoped<'s>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 's>>) {
        let mut jobs = jobs.into_iter();
        let Some(first) = jobs.next() else {
            return;
        };
        let latch = Arc::new(Latch {
            state: Mutex::new((jobs.len(), None)),
            done: Condvar::new(),
        });
        // The jobs wait in a queue of this call's own; the pool's queue gets one ticket
        // per job, which runs the next of them still waiting (if any: this thread may
        // have run it).
        let own: Arc<Mutex<VecDeque<Job>>> = Arc::new(Mutex::new(VecDeque::new()));
        let count = jobs.len();
        for job in jobs {
            let latch = latch.clone();
            let job: Box<dyn FnOnce() + Send + 's> = Box::new(move || {
                let panic = catch_unwind(AssertUnwindSafe(job)).err();
                latch.finish(panic);
            });
            // SAFETY: the job borrows from the caller's frame for 's. This function does
            // not return, nor unwind (the first job's panic is caught below), before the
            // latch says every job has run, so no job outlives what it borrows; a ticket
            // that finds the queue empty afterwards touches nothing borrowed.
            let job: Job =
                unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 's>, Job>(job) };
            lock(&own).push_back(job);
        }
        for _ in 0..count {
            let own = own.clone();
            self.push(Box::new(move || {
                let job = lock(&own).pop_front();
                if let Some(job) = job {
                    job();
                }
            }));
        }
        let first_panic = catch_unwind(AssertUnwindSafe(first)).err();
        loop {
            let job = lock(&own).pop_front();
            match job {
                Some(job) => job(),
                None => break,
            }
        }
        let panic = latch.wait();
        if let Some(panic) = first_panic.or(panic) {
            resume_unwind(panic);
        }
    }

    /// `f` applied to every item, at once on the pool; the results in item order.
    pub(super) fn map<T: Send, R: Send>(&self, items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
        if items.len() < 2 {
            return items.into_iter().map(f).collect();
        }
        let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
        {
            let (f, slots) = (&f, &slots);
            let jobs = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    Box::new(move || *lock(&slots[i]) = Some(f(item)))
                        as Box<dyn FnOnce() + Send + '_>
                })
                .collect();
            self.run_scoped(jobs);
        }
        slots
            .into_iter()
            .map(|s| {
                s.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .expect("run_scoped runs every job")
            })
            .collect()
    }

    /// Runs `a` here and `b` on the pool at the same time; both results.
    pub(super) fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        let (mut ra, mut rb) = (None, None);
        {
            let (pa, pb) = (&mut ra, &mut rb);
            self.run_scoped(vec![
                Box::new(move || *pa = Some(a())),
                Box::new(move || *pb = Some(b())),
            ]);
        }
        (
            ra.expect("run_scoped runs every job"),
            rb.expect("run_scoped runs every job"),
        )
    }
}

impl Drop for IoPool {
    /// Lets the workers finish what is queued and exit. They are not joined: the last
    /// handle on a volume may be dropped by a job running on one of them.
    fn drop(&mut self) {
        lock(&self.shared.queue).is_closing = true;
        self.shared.work.notify_all();
    }
}

/// A worker: runs queued jobs, sleeps while there are none, exits once the pool closes
/// and the queue is empty.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.is_closing {
                    return;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn map_keeps_order_and_runs_in_parallel() {
        let pool = IoPool::new(4).unwrap();
        let out = pool.map((0..100).collect(), |i: u64| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        // Four jobs that each wait for all four to have started: only parallel runs end.
        let started = AtomicUsize::new(0);
        pool.map(vec![(); 4], |()| {
            started.fetch_add(1, Ordering::SeqCst);
            while started.load(Ordering::SeqCst) < 4 {
                std::thread::yield_now();
            }
        });
    }

    #[test]
    fn nested_maps_from_pool_jobs_finish() {
        let pool = Arc::new(IoPool::new(2).unwrap());
        // More outer jobs than workers, each mapping again on the same pool.
        let out = pool.map((0..8).collect(), |i: u64| {
            pool.map((0..8).collect(), |j: u64| i * j)
                .iter()
                .sum::<u64>()
        });
        assert_eq!(out, (0..8).map(|i| i * 28).collect::<Vec<_>>());
        let (a, b) = pool.join(|| 1, || pool.map(vec![1, 2], |x: i32| x).len());
        assert_eq!((a, b), (1, 2));
    }

    #[test]
    fn a_panicking_job_panics_the_caller_and_the_pool_lives_on() {
        let pool = IoPool::new(2).unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.map(vec![1, 2, 3], |x: i32| {
                if x == 3 {
                    panic!("boom");
                }
                x
            })
        }));
        assert!(caught.is_err());
        assert_eq!(pool.map(vec![1, 2], |x: i32| x + 1), vec![2, 3]);
        let (tx, rx) = std::sync::mpsc::channel();
        pool.spawn(move || tx.send(7).unwrap());
        assert_eq!(rx.recv().unwrap(), 7);
    }
}
