//! A compile thread: compilations run beside the interpreter instead of
//! stopping it.
//!
//! A tiering runtime that compiles on the interpreter's thread makes the
//! program wait for every compilation, so it must refuse compilations that
//! might not pay back ([`crate::CompileBudget`]) — and then runs hot code in
//! the interpreter while it waits for the budget. With a thread of its own
//! the interpreter goes on while a unit compiles, and switches to the code
//! when it arrives; the program never waits for the compiler.
//!
//! [`Background`] is that thread, for any guest: jobs go in, results come
//! out in the same order, and the runtime polls for them where it can
//! switch (a loop header). Dropping it abandons queued jobs and lets the
//! job under way finish on its own, unjoined: a program that ends never
//! waits for a compilation whose code it would not run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;

/// A worker thread that turns jobs `J` into results `D`, in order.
pub struct Background<J, D> {
    jobs: Sender<J>,
    done: Receiver<D>,
    /// Set on drop: the worker skips the jobs still queued.
    cancelled: Arc<AtomicBool>,
    /// Jobs submitted whose results have not been taken.
    in_flight: usize,
}

/// The worker thread stopped (a job panicked): no results will come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerGone;

impl std::fmt::Display for WorkerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the compile thread stopped")
    }
}

impl std::error::Error for WorkerGone {}

impl<J: Send + 'static, D: Send + 'static> Background<J, D> {
    /// Starts a thread named `name` that runs `work` on every job.
    pub fn spawn(
        name: &str,
        mut work: impl FnMut(J) -> D + Send + 'static,
    ) -> std::io::Result<Background<J, D>> {
        let (jobs, job_rx) = channel::<J>();
        let (done_tx, done) = channel::<D>();
        let cancelled = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancelled);
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for job in job_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if done_tx.send(work(job)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Background {
            jobs,
            done,
            cancelled,
            in_flight: 0,
        })
    }

    /// Queues a job.
    pub fn submit(&mut self, job: J) -> Result<(), WorkerGone> {
        self.jobs.send(job).map_err(|_| WorkerGone)?;
        self.in_flight += 1;
        Ok(())
    }

    /// The next result if one is ready (never blocks).
    pub fn poll(&mut self) -> Result<Option<D>, WorkerGone> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        match self.done.try_recv() {
            Ok(d) => {
                self.in_flight -= 1;
                Ok(Some(d))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(WorkerGone),
        }
    }

    /// The next result, waiting for it; `None` when no job is in flight.
    pub fn wait(&mut self) -> Result<Option<D>, WorkerGone> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let d = self.done.recv().map_err(|_| WorkerGone)?;
        self.in_flight -= 1;
        Ok(Some(d))
    }

    /// Jobs submitted whose results have not been taken.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl<J, D> Drop for Background<J, D> {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_order() {
        let mut bg = Background::spawn("test", |x: u32| x * 2).unwrap();
        assert_eq!(bg.poll(), Ok(None));
        for x in 0..10 {
            bg.submit(x).unwrap();
        }
        assert_eq!(bg.in_flight(), 10);
        let got: Vec<u32> = (0..10).map(|_| bg.wait().unwrap().unwrap()).collect();
        assert_eq!(got, (0..10).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(bg.wait(), Ok(None));
    }

    #[test]
    fn poll_never_blocks() {
        let (gate_tx, gate) = sync_channel::<()>(0);
        let gate = std::sync::Mutex::new(gate);
        let mut bg = Background::spawn("test", move |x: u32| {
            gate.lock().unwrap().recv().unwrap();
            x
        })
        .unwrap();
        bg.submit(7).unwrap();
        assert_eq!(bg.poll(), Ok(None)); // the job waits for the gate
        gate_tx.send(()).unwrap();
        let mut got = None;
        for _ in 0..1000 {
            if let Some(d) = bg.poll().unwrap() {
                got = Some(d);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(got, Some(7));
    }

    #[test]
    fn a_panicking_job_is_reported_not_propagated() {
        let mut bg = Background::spawn("test", |x: u32| {
            assert!(x != 1, "job 1 fails");
            x
        })
        .unwrap();
        bg.submit(0).unwrap();
        assert_eq!(bg.wait(), Ok(Some(0)));
        bg.submit(1).unwrap();
        assert_eq!(bg.wait(), Err(WorkerGone));
    }

    #[test]
    fn dropping_skips_queued_jobs() {
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&ran);
        let (started_tx, started) = channel::<()>();
        let (gate_tx, gate) = sync_channel::<()>(0);
        let gate = std::sync::Mutex::new(gate);
        let mut bg = Background::spawn("test", move |_: u32| {
            let _ = started_tx.send(());
            let _ = gate.lock().unwrap().recv();
            count.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for x in 0..5 {
            bg.submit(x).unwrap();
        }
        started.recv().unwrap(); // job 0 is under way
        drop(bg);
        // Release the job under way; the four queued ones are skipped.
        gate_tx.send(()).unwrap();
        drop(gate_tx);
        for _ in 0..200 {
            if ran.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
