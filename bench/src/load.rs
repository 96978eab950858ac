//! Load generators. Every one runs for a fixed time and stops by itself.
//!
//! - [`saturate`]: closed loop, many requests outstanding: the most the server can answer.
//! - [`open_loop`]: requests start at a fixed arrival rate whatever the server does, so queueing
//!   shows in the latency (a closed loop would slow down with the server and hide it). Latency
//!   runs from the moment a request is due (when the scheduler fires) to its last response byte,
//!   including any wait for a free HTTP/1.1 connection.
//! - [`connection_rate`]: each request on a new TCP + TLS connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;

use crate::client::{Conn, Proto, Target};
use crate::proc;

/// What a closed-loop run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Successful requests per second (wall clock).
    pub per_second: f64,
    /// Requests answered with anything but 200, or failed.
    pub errors: u64,
    /// Server CPU seconds per wall second (1.0 = one core busy).
    pub server_cores: f64,
    /// Successful requests per server CPU second.
    pub per_server_core: f64,
}

/// What every run shares: where to send, what, and for how long.
#[derive(Clone)]
pub struct Run {
    /// The server.
    pub target: Target,
    /// HTTP/1.1 or HTTP/2.
    pub proto: Proto,
    /// The request path.
    pub path: &'static str,
    /// The request body.
    pub body: Bytes,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// The server process, for its CPU time.
    pub server_pid: u32,
}

fn ok(result: &Result<(StatusCode, Bytes), String>) -> bool {
    matches!(result, Ok((status, _)) if *status == StatusCode::OK)
}

/// Closed loop: `conns` connections, each with `per_conn` requests outstanding (HTTP/2; HTTP/1.1
/// always has one), for `warmup` then `duration`. `server_pid` is measured for CPU time.
pub async fn saturate(run: &Run, conns: usize, per_conn: usize) -> Throughput {
    let Run {
        target,
        proto,
        path,
        body,
        warmup,
        duration,
        server_pid,
    } = run.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let first = target.connect(proto).await.expect("connects");
        let mut handles = vec![];
        if proto == Proto::H2 {
            handles.extend((1..per_conn).filter_map(|_| first.share()));
        }
        handles.push(first);
        for mut conn in handles {
            let (stop, measuring, done, errors, body) = (
                stop.clone(),
                measuring.clone(),
                done.clone(),
                errors.clone(),
                body.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let result = conn.post(path, body.clone()).await;
                    if measuring.load(Ordering::Relaxed) {
                        if ok(&result) {
                            done.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if result.is_err() {
                        break;
                    }
                }
            }));
        }
    }
    tokio::time::sleep(warmup).await;
    let cpu0 = proc::cpu_seconds(server_pid).unwrap_or(0.0);
    let t0 = Instant::now();
    measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::SeqCst);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds(server_pid).unwrap_or(0.0) - cpu0;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let done = done.load(Ordering::SeqCst) as f64;
    Throughput {
        per_second: done / wall,
        errors: errors.load(Ordering::SeqCst),
        server_cores: cpu / wall,
        per_server_core: if cpu > 0.0 { done / cpu } else { 0.0 },
    }
}

/// What an open-loop run measured.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Sorted latencies of the successful requests.
    pub sorted: Vec<Duration>,
    /// Requests that failed or got a status other than 200.
    pub errors: u64,
    /// Requests actually started per second.
    pub achieved_rate: f64,
    /// Server CPU seconds per wall second.
    pub server_cores: f64,
}

/// Open loop at `rate` requests per second for `duration` (after `warmup`, not recorded).
/// HTTP/1.1 uses a pool of `conns` kept-alive connections (the API server keeps up to 25 idle
/// per host); HTTP/2 multiplexes over `conns` connections in turn.
pub async fn open_loop(run: &Run, rate: u32, conns: usize) -> Latencies {
    let Run {
        target,
        proto,
        path,
        body,
        warmup,
        duration,
        server_pid,
    } = run.clone();
    let (pool_tx, pool_rx) = async_channel(conns);
    let mut h2_conns = Vec::new();
    for _ in 0..conns {
        let conn = target.connect(proto).await.expect("connects");
        match proto {
            Proto::H1 => pool_tx.send(conn).await.expect("pool"),
            Proto::H2 => h2_conns.push(conn),
        }
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::with_capacity(
        (rate as usize) * (duration.as_secs() as usize + 1),
    )));
    let errors = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let warmup_n = (warmup.as_secs_f64() * f64::from(rate)) as u64;
    let total = warmup_n + (duration.as_secs_f64() * f64::from(rate)) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut cpu0 = 0.0;
    let mut measured_start = Instant::now();
    let mut i: u64 = 0;
    while i < total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let now = tokio::time::Instant::now();
        // Every request due by now starts now (the timer has millisecond resolution).
        while i < total && start + period.mul_f64(i as f64) <= now {
            if i == warmup_n {
                cpu0 = proc::cpu_seconds(server_pid).unwrap_or(0.0);
                measured_start = Instant::now();
            }
            let record = i >= warmup_n;
            let t0 = Instant::now();
            let (latencies, errors, body) = (latencies.clone(), errors.clone(), body.clone());
            match proto {
                Proto::H1 => {
                    let (pool_tx, pool_rx) = (pool_tx.clone(), pool_rx.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut conn = pool_rx.recv().await.expect("pool");
                        let result = conn.post(path, body).await;
                        let elapsed = t0.elapsed();
                        tally(record, &result, elapsed, &latencies, &errors);
                        let _ = pool_tx.send(conn).await;
                    }));
                }
                Proto::H2 => {
                    let mut conn = h2_conns[(i as usize) % h2_conns.len()]
                        .share()
                        .expect("HTTP/2");
                    tasks.push(tokio::spawn(async move {
                        let result = conn.post(path, body).await;
                        let elapsed = t0.elapsed();
                        tally(record, &result, elapsed, &latencies, &errors);
                    }));
                }
            }
            i += 1;
        }
    }
    let wall = measured_start.elapsed().as_secs_f64();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let cpu = proc::cpu_seconds(server_pid).unwrap_or(0.0) - cpu0;
    let mut sorted = std::mem::take(&mut *latencies.lock().expect("latencies"));
    sorted.sort();
    Latencies {
        achieved_rate: (total - warmup_n) as f64 / wall,
        sorted,
        errors: errors.load(Ordering::SeqCst),
        server_cores: cpu / wall,
    }
}

fn tally(
    record: bool,
    result: &Result<(StatusCode, Bytes), String>,
    elapsed: Duration,
    latencies: &std::sync::Mutex<Vec<Duration>>,
    errors: &AtomicU64,
) {
    if !record {
        return;
    }
    if ok(result) {
        if let Ok(mut l) = latencies.lock() {
            l.push(elapsed);
        }
    } else {
        errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A bounded multi-consumer queue of connections (tokio has none; a mutex'd receiver will do).
fn async_channel(n: usize) -> (tokio::sync::mpsc::Sender<Conn>, SharedReceiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(n.max(1));
    (tx, SharedReceiver(Arc::new(tokio::sync::Mutex::new(rx))))
}

#[derive(Clone)]
struct SharedReceiver(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Conn>>>);

impl SharedReceiver {
    async fn recv(&self) -> Option<Conn> {
        self.0.lock().await.recv().await
    }
}

/// What a new-connection run measured.
#[derive(Debug, Clone, Copy)]
pub struct ConnRate {
    /// New connections (each with one request answered 200) per second.
    pub per_second: f64,
    /// Failed connections or requests.
    pub errors: u64,
    /// Server CPU seconds per wall second.
    pub server_cores: f64,
}

/// `concurrency` loops, each: connect, TLS handshake, one request, close; for `duration`.
pub async fn connection_rate(run: &Run, concurrency: usize) -> ConnRate {
    let Run {
        target,
        proto,
        path,
        body,
        duration,
        server_pid,
        ..
    } = run.clone();
    let deadline = Instant::now() + duration;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = proc::cpu_seconds(server_pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, done, errors, body) =
            (target.clone(), done.clone(), errors.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let result = match target.connect(proto).await {
                    Ok(mut conn) => conn.post(path, body.clone()).await,
                    Err(e) => Err(e),
                };
                if ok(&result) {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds(server_pid).unwrap_or(0.0) - cpu0;
    ConnRate {
        per_second: done.load(Ordering::SeqCst) as f64 / wall,
        errors: errors.load(Ordering::SeqCst),
        server_cores: cpu / wall,
    }
}

/// Opens `n` connections (half HTTP/1.1, half HTTP/2), sends one request on each, and returns
/// them open.
pub async fn hold_connections(
    target: &Target,
    path: &'static str,
    body: Bytes,
    n: usize,
) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let mut conn = target.connect(proto).await.expect("connects");
        let result = conn.post(path, body.clone()).await;
        assert!(ok(&result), "request on held connection {i}: {result:?}");
        conns.push(conn);
    }
    conns
}
