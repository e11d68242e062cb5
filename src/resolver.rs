//! [`Resolver`]: host name lookups off the reactor thread.
//!
//! `getaddrinfo` blocks, and the reactor must never block. Lookups run on a
//! few worker threads (started when first needed, at most
//! [`MAX_WORKERS`], ended when the reactor drops its resolver) that send
//! their answers back over a crossbeam channel and wake the reactor through
//! its `mio::Waker`; the reactor hands each answer to the socket that asked.
//! (Sockets do not ask for IP literals: [`parse_ip_literal`] tells them.)

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::context::ObjectKey;

/// The most lookups that run at once (slow DNS does not block the others).
const MAX_WORKERS: usize = 4;

/// A finished lookup, for the socket `socket`'s lookup number `lookup`.
pub(crate) struct Resolved {
    pub(crate) socket: ObjectKey,
    pub(crate) lookup: u64,
    pub(crate) addresses: io::Result<Vec<SocketAddr>>,
}

/// A lookup for a worker.
struct Job {
    socket: ObjectKey,
    lookup: u64,
    host: String,
    port: u16,
}

/// Runs lookups on worker threads and collects their answers.
pub(crate) struct Resolver {
    answers: Sender<Resolved>,
    receiver: Receiver<Resolved>,
    jobs: Sender<Job>,
    job_queue: Receiver<Job>,
    waker: Arc<Waker>,
    workers: usize,
    idle: Arc<AtomicUsize>,
    in_flight: usize,
}

impl Resolver {
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        let (answers, receiver) = crossbeam_channel::unbounded();
        let (jobs, job_queue) = crossbeam_channel::unbounded();
        Self {
            answers,
            receiver,
            jobs,
            job_queue,
            waker,
            workers: 0,
            idle: Arc::new(AtomicUsize::new(0)),
            in_flight: 0,
        }
    }

    /// Starts resolving `host:port` for `socket`; the answer arrives through
    /// [`take_answers`](Self::take_answers).
    pub(crate) fn lookup(&mut self, socket: ObjectKey, lookup: u64, host: &str, port: u16) {
        self.in_flight += 1;
        if self.idle.load(Ordering::Acquire) == 0 && self.workers < MAX_WORKERS {
            self.start_worker();
        }
        let job = Job {
            socket,
            lookup,
            host: host.to_owned(),
            port,
        };
        if self.workers == 0 {
            return self.answer_failure(job, io::Error::other("cannot start a resolver thread"));
        }
        // Cannot fail: the resolver holds a receiver of its own queue.
        let _ = self.jobs.send(job);
    }

    fn start_worker(&mut self) {
        let jobs = self.job_queue.clone();
        let answers = self.answers.clone();
        let waker = Arc::clone(&self.waker);
        let idle = Arc::clone(&self.idle);
        let spawned = thread::Builder::new()
            .name("sslsocket-dns".into())
            .spawn(move || work(&jobs, &answers, &waker, &idle));
        match spawned {
            Ok(_) => self.workers += 1,
            Err(e) => log::debug!("cannot start a resolver thread: {e}"),
        }
    }

    fn answer_failure(&self, job: Job, error: io::Error) {
        let _ = self.answers.send(Resolved {
            socket: job.socket,
            lookup: job.lookup,
            addresses: Err(error),
        });
        let _ = self.waker.wake();
    }

    /// Whether answers may still arrive.
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight > 0
    }

    /// The answers that have arrived.
    pub(crate) fn take_answers(&mut self) -> Vec<Resolved> {
        let answers: Vec<Resolved> = self.receiver.try_iter().collect();
        self.in_flight -= answers.len();
        answers
    }
}

/// A worker: resolves jobs until the reactor drops its resolver.
fn work(jobs: &Receiver<Job>, answers: &Sender<Resolved>, waker: &Waker, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        let job = jobs.recv();
        idle.fetch_sub(1, Ordering::AcqRel);
        let Ok(job) = job else { return };
        let addresses = (job.host.as_str(), job.port)
            .to_socket_addrs()
            .map(Iterator::collect);
        log::debug!("resolved {}: {addresses:?}", job.host);
        let answer = Resolved {
            socket: job.socket,
            lookup: job.lookup,
            addresses,
        };
        if answers.send(answer).is_err() || waker.wake().is_err() {
            return;
        }
    }
}

/// An IP address literal, also in URL brackets (`[::1]`).
pub(crate) fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}
