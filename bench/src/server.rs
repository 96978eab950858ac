//! The server benchmark: `kube-harden serve` (the release binary, as deployed) and the canned
//! baseline, each in its own process, under the load generators of [`crate::load`]; prints
//! Markdown tables.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::{Proto, Target};
use crate::pki::Pki;
use crate::{REVIEW_BODIES, Scratch, fixture, free_port, ms, percentile, proc};
use crate::{canned, load};

/// A server process this benchmark started; killed and reaped on drop.
pub struct ServerProcess {
    child: Child,
    /// Its PID.
    pub pid: u32,
    /// The HTTPS address.
    pub addr: SocketAddr,
    /// The plain-HTTP metrics address (kube-harden only).
    pub metrics: Option<SocketAddr>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET; the status code, or 0.
pub fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return 0;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(tcp, "GET {path} HTTP/1.0\r\nhost: x\r\n\r\n").is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    if tcp.read_exact(&mut head).is_err() {
        return 0;
    }
    String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0)
}

/// Starts `kube-harden serve` on free ports with the certificate in `dir`; waits for /readyz.
pub fn start_kube_harden(bin: &Path, dir: &Path, pki: &Pki, extra: &[&str]) -> ServerProcess {
    let (cert, key) = pki.write(dir);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let child = Command::new(bin)
        .arg("serve")
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .args(["--webhook-addr", &addr.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(["--shutdown-delay", "0s"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let process = ServerProcess {
        pid: child.id(),
        child,
        addr,
        metrics: Some(metrics),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_status(metrics, "/readyz") != 200 {
        assert!(
            Instant::now() < deadline,
            "kube-harden did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

/// Starts the canned server (this binary's `canned` command) on a free port; with `answers`, a
/// directory whose each file it serves at `/answer/<name>`.
pub fn start_canned(dir: &Path, pki: &Pki, answers: Option<&Path>) -> ServerProcess {
    let (cert, key) = pki.write(dir);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("canned")
        .arg(&cert)
        .arg(&key)
        .args(answers)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the canned server");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("canned server prints its address");
    let addr = line.trim().parse().expect("canned server address");
    ServerProcess {
        pid: child.id(),
        child,
        addr,
        metrics: None,
    }
}

/// Settings of a server benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kube-harden binary.
    pub bin: PathBuf,
    /// Seconds measured per throughput and latency run (after a warm-up).
    pub seconds: u64,
}

fn rss_mib(pid: u32) -> String {
    proc::rss_kib(pid).map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// Runs the whole server benchmark and prints the tables.
pub async fn run(options: &Options) {
    let scratch = Scratch::new("server");
    let pki = Pki::new();
    let ca = pki.ca_pem.as_bytes();
    let secs = Duration::from_secs(options.seconds);
    let warmup = Duration::from_secs(1);
    println!("## Server benchmark\n");
    println!("machine: {}", proc::machine());
    println!(
        "kube-harden: {} (release), TLS 1.3, ECDSA P-256 certificate, load generator in the same machine\n",
        options.bin.display()
    );

    let kh = start_kube_harden(&options.bin, &scratch.0, &pki, &[]);
    let kh_target = Target::new(kh.addr, ca, None);
    // Memory idle after start, before any review.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(kh.pid);
    // kube-harden's own answer to each body, for the canned server to send back: the same bytes
    // each way, nothing computed.
    let answers = scratch.0.join("answers");
    std::fs::create_dir_all(&answers).expect("answers directory");
    let mut conn = kh_target.connect(Proto::H1).await.expect("kube-harden");
    let mut answer_sizes = Vec::new();
    for (_, file) in REVIEW_BODIES {
        let (status, answer) = conn
            .send("POST", "/mutate", Bytes::from(fixture(file)))
            .await
            .expect("kube-harden's answer");
        assert!(status.is_success(), "kube-harden answered {status}");
        answer_sizes.push(answer.len());
        std::fs::write(answers.join(file), &answer).expect("write the answer");
    }
    drop(conn);
    let canned = start_canned(&scratch.0, &pki, Some(&answers));
    let canned_target = Target::new(canned.addr, ca, None);
    let pod = Bytes::from(fixture(REVIEW_BODIES[0].1));

    // Memory with 200 connections that each sent a review.
    let held = load::hold_connections(&kh_target, "/mutate", pod.clone(), 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_200 = rss_mib(kh.pid);
    let fds_200 = proc::open_fds(kh.pid).unwrap_or(0);
    drop(held);

    println!("### Throughput at saturation (closed loop)\n");
    println!(
        "HTTP/1.1: 32 connections, one request each in flight; HTTP/2: 4 connections x 16 streams. {} s measured after 1 s warm-up. The canned server answers {} bytes (`canned`), or kube-harden's own answer to the body (`canned, same answer`: {} bytes), read back from kube-harden before the run.\n",
        options.seconds,
        canned::CANNED.len(),
        answer_sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
    );
    println!(
        "| body | protocol | kube-harden req/s | server CPU (cores) | reviews/s per server core | canned req/s | canned CPU (cores) | kube-harden / canned | canned, same answer req/s | kube-harden / canned, same answer | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (label, file) in REVIEW_BODIES {
        let body = Bytes::from(fixture(file));
        // The load generator's tasks need a `&'static` path: three small strings per run.
        let same_answer: &'static str = Box::leak(format!("/answer/{file}").into_boxed_str());
        for proto in [Proto::H1, Proto::H2] {
            let (conns, streams) = match proto {
                Proto::H1 => (32, 1),
                Proto::H2 => (4, 16),
            };
            let run = |target: &Target, path: &'static str, server_pid| load::Run {
                target: target.clone(),
                proto,
                path,
                body: body.clone(),
                warmup,
                duration: secs,
                server_pid,
            };
            let k = load::saturate(&run(&kh_target, "/mutate", kh.pid), conns, streams).await;
            let c =
                load::saturate(&run(&canned_target, "/mutate", canned.pid), conns, streams).await;
            let s = load::saturate(
                &run(&canned_target, same_answer, canned.pid),
                conns,
                streams,
            )
            .await;
            println!(
                "| {label} | {} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {} |",
                proto.label(),
                k.per_second,
                k.server_cores,
                k.per_server_core,
                c.per_second,
                c.server_cores,
                k.per_second / c.per_second,
                s.per_second,
                k.per_second / s.per_second,
                k.errors + c.errors + s.errors,
            );
        }
    }

    println!("\n### Latency at a fixed arrival rate (open loop), Pod CREATE 5.6 KB\n");
    println!(
        "HTTP/1.1: a pool of 25 kept-alive connections (the API server's idle limit per host); HTTP/2: one connection. {} s measured after 1 s warm-up.\n",
        options.seconds
    );
    println!(
        "| server | protocol | rate (req/s) | achieved | p50 ms | p99 ms | p99.9 ms | max ms | server CPU (cores) | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, target, pid) in [
        ("kube-harden", &kh_target, kh.pid),
        ("canned", &canned_target, canned.pid),
    ] {
        for proto in [Proto::H1, Proto::H2] {
            for rate in [1000, 5000] {
                let conns = if proto == Proto::H1 { 25 } else { 1 };
                let run = load::Run {
                    target: target.clone(),
                    proto,
                    path: "/mutate",
                    body: pod.clone(),
                    warmup,
                    duration: secs,
                    server_pid: pid,
                };
                let l = load::open_loop(&run, rate, conns).await;
                println!(
                    "| {name} | {} | {rate} | {:.0} | {} | {} | {} | {} | {:.2} | {} |",
                    proto.label(),
                    l.achieved_rate,
                    ms(percentile(&l.sorted, 50.0)),
                    ms(percentile(&l.sorted, 99.0)),
                    ms(percentile(&l.sorted, 99.9)),
                    ms(l.sorted.last().copied().unwrap_or_default()),
                    l.server_cores,
                    l.errors,
                );
            }
        }
    }

    println!("\n### New TLS connections (one review each, then close), Pod CREATE 5.6 KB\n");
    println!(
        "| server | protocol | concurrent clients | connections/s | server CPU (cores) | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, target, pid) in [
        ("kube-harden", &kh_target, kh.pid),
        ("canned", &canned_target, canned.pid),
    ] {
        for proto in [Proto::H1, Proto::H2] {
            let run = load::Run {
                target: target.clone(),
                proto,
                path: "/mutate",
                body: pod.clone(),
                warmup,
                duration: secs,
                server_pid: pid,
            };
            let r = load::connection_rate(&run, 8).await;
            println!(
                "| {name} | {} | 8 | {:.0} | {:.2} | {} |",
                proto.label(),
                r.per_second,
                r.server_cores,
                r.errors
            );
        }
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib(kh.pid);
    println!("\n### Memory (kube-harden RSS)\n");
    println!("| state | RSS MiB | open files |");
    println!("| --- | --- | --- |");
    println!("| idle after start | {idle} | - |");
    println!(
        "| 200 connections open (100 HTTP/1.1, 100 HTTP/2), one review each | {with_200} | {fds_200} |"
    );
    println!("| idle after the whole run | {after} | - |");
    println!();
    drop(canned);
    drop(kh);
}
