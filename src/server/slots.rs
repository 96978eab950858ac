//! Connection slots of one listener: a cap on open connections, and at the cap the oldest
//! *stalled* connection is shed to make room for the new one.
//!
//! A connection is stalled while it holds its slot without giving the server work: before its
//! TLS handshake and first request, while a request's headers or body trickle in, or idle between
//! requests. A request whose body has arrived (being answered) is never stalled. At the cap, a
//! new connection waits (already accepted) until a slot frees; meanwhile the connection stalled
//! for at least the listener's grace period is closed, preferring one that has never completed a
//! request (a client that opened a connection and is trickling, or sends nothing) over one kept
//! alive between requests (the API server's pooled connections), and the oldest first. A flood of
//! slow or idle connections therefore cannot keep a well-behaved client waiting for longer than
//! the grace period plus a poll (250 ms), whatever the timeouts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// How often a connection waiting for a slot looks for a stalled one to shed again.
const POLL: Duration = Duration::from_millis(250);

/// The slots of one listener.
pub struct Slots {
    semaphore: Arc<Semaphore>,
    max: usize,
    /// A connection stalled for less than this is not shed.
    grace: Duration,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

/// One open connection, as the slots see it.
pub struct Conn {
    accepted: Instant,
    /// Requests of the connection.
    pub activity: Activity,
    /// Notified when this connection is shed.
    shed: Notify,
    shedding: AtomicBool,
}

impl Conn {
    /// Resolves when the listener sheds this connection.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }

    /// `(has completed a request, stalled since)`, or `None` while a request is answered.
    fn stalled_since(&self) -> Option<(bool, Instant)> {
        let a = &self.activity;
        let served = a.completed.load(Ordering::SeqCst) > 0;
        if a.in_flight.load(Ordering::SeqCst) == 0 {
            return Some((served, lock(&a.idle_since)));
        }
        if a.receiving.load(Ordering::SeqCst) > 0 {
            let since = lock(&a.receiving_since);
            return Some((served, if served { since } else { self.accepted }));
        }
        None
    }
}

fn lock(m: &Mutex<Instant>) -> Instant {
    m.lock().map_or_else(|e| *e.into_inner(), |t| *t)
}

fn set(m: &Mutex<Instant>, t: Instant) {
    match m.lock() {
        Ok(mut g) => *g = t,
        Err(e) => *e.into_inner() = t,
    }
}

/// Requests of one connection: in flight, receiving their body, completed, and when the last
/// one ended.
pub struct Activity {
    in_flight: AtomicUsize,
    receiving: AtomicUsize,
    completed: AtomicU64,
    idle_since: Mutex<Instant>,
    receiving_since: Mutex<Instant>,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            idle_since: Mutex::new(now),
            receiving_since: Mutex::new(now),
        }
    }

    /// The instant the connection has been idle since, or `None` while a request runs.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::SeqCst) == 0).then(|| lock(&self.idle_since))
    }

    /// Restarts the idle clock (the TLS handshake is done: the first request's time starts).
    pub fn restart_idle_clock(&self) {
        set(&self.idle_since, Instant::now());
    }

    /// Whether a request has been answered on this connection.
    pub fn served(&self) -> bool {
        self.completed.load(Ordering::SeqCst) > 0
    }
}

/// A request in flight; ends (and restarts the idle clock) when dropped.
pub struct InFlight(Arc<Conn>);

/// A request whose body is still being received; the body is in when dropped.
#[derive(Clone)]
pub struct Receiving {
    _guard: Arc<ReceivingInner>,
}

/// Shared so that the guard can live in a request's extensions (which must be `Clone`).
struct ReceivingInner(Arc<Conn>);

/// Starts a request: in flight, and receiving its body until the returned guard is dropped.
pub fn begin(conn: &Arc<Conn>) -> (InFlight, Receiving) {
    let a = &conn.activity;
    a.in_flight.fetch_add(1, Ordering::SeqCst);
    if a.receiving.fetch_add(1, Ordering::SeqCst) == 0 {
        set(&a.receiving_since, Instant::now());
    }
    (
        InFlight(Arc::clone(conn)),
        Receiving {
            _guard: Arc::new(ReceivingInner(Arc::clone(conn))),
        },
    )
}

impl Drop for ReceivingInner {
    fn drop(&mut self) {
        self.0.activity.receiving.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0.activity;
        set(&a.idle_since, Instant::now());
        a.completed.fetch_add(1, Ordering::SeqCst);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's slot: frees itself (and leaves the table) when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// The connection.
    pub conn: Arc<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.slots.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Slots {
    /// At most `max` connections (clamped to 1 ..= the semaphore's maximum); a connection stalled
    /// for `grace` may be shed at the cap.
    pub fn new(max: usize, grace: Duration) -> Arc<Self> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
            grace,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.semaphore.available_permits())
    }

    /// A slot for a connection just accepted. At the cap, sheds the oldest stalled connection
    /// (again every 250 ms while none qualifies) and waits for a slot to free. `None` once the
    /// slots are closed.
    pub async fn acquire(self: &Arc<Self>) -> Option<Slot> {
        loop {
            match Arc::clone(&self.semaphore).try_acquire_owned() {
                Ok(permit) => return Some(self.register(permit)),
                Err(TryAcquireError::Closed) => return None,
                Err(TryAcquireError::NoPermits) => {}
            }
            if let Some(victim) = self.oldest_stalled(Instant::now()) {
                victim.shedding.store(true, Ordering::SeqCst);
                victim.shed.notify_one();
            }
            let wait = Arc::clone(&self.semaphore).acquire_owned();
            match tokio::time::timeout(POLL, wait).await {
                Ok(Ok(permit)) => return Some(self.register(permit)),
                Ok(Err(_)) => return None,
                Err(_) => {}
            }
        }
    }

    /// Waits until every connection has closed, at most `timeout`; false if some are still open.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.semaphore.acquire_many(all))
            .await
            .is_ok()
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let now = Instant::now();
        let conn = Arc::new(Conn {
            accepted: now,
            activity: Activity::new(now),
            shed: Notify::new(),
            shedding: AtomicBool::new(false),
        });
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, Arc::clone(&conn));
        }
        Slot {
            slots: Arc::clone(self),
            id,
            conn,
            _permit: permit,
        }
    }

    /// The connection to shed: stalled for at least the grace period, never served before
    /// served, oldest first.
    fn oldest_stalled(&self, now: Instant) -> Option<Arc<Conn>> {
        let open = self.open.lock().ok()?;
        open.values()
            .filter(|c| !c.shedding.load(Ordering::SeqCst))
            .filter_map(|c| c.stalled_since().map(|key| (key, c)))
            .filter(|((_, since), _)| now.saturating_duration_since(*since) >= self.grace)
            .min_by_key(|(key, _)| *key)
            .map(|(_, c)| Arc::clone(c))
    }
}

#[cfg(test)]
mod tests;
