//! Child processes with a deadline: every command the harness runs (the control-plane script,
//! kubectl, cargo) is bounded in time, and its output is read on threads so a full pipe can
//! never stall it. Long-running servers (kube-harden) are [`Supervised`]: stopped on drop, and by
//! a watchdog if the test process dies.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Result;

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// `Ok(self)` when the command exited 0, else an error quoting `what` and both streams.
    pub fn ok(self, what: &str) -> Result<Self> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(format!(
                "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
                self.status, self.stdout, self.stderr
            )
            .into())
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` until `deadline`; kills it (by its own PID) when the deadline passes.
fn wait_until(child: &mut Child, deadline: Instant, what: &str) -> Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: still running at its deadline, killed").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with `stdin` as its input, capturing both output streams, for at most `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            }))
        }
        _ => None,
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_until(&mut child, Instant::now() + timeout, &what);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    let status = status.map_err(|e| format!("{e}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"))?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Runs `cmd` with the caller's stderr (so a long build shows its progress), stdout discarded.
pub fn run_visible(cmd: &mut Command, timeout: Duration) -> Result<ExitStatus> {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    wait_until(&mut child, Instant::now() + timeout, &what)
}

/// Runs `cmd` with its output appended to `log` and in a process group of its own, for at
/// most `timeout`: if this process is killed or Ctrl-C is pressed meanwhile, `cmd` (a cleanup)
/// neither gets the terminal's SIGINT nor dies writing to a pipe nobody reads.
pub fn run_detached(
    cmd: &mut Command,
    log: &std::path::Path,
    timeout: Duration,
) -> Result<ExitStatus> {
    use std::os::unix::process::CommandExt;
    let what = format!("{:?}", cmd.get_program());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    wait_until(&mut child, Instant::now() + timeout, &what)
}

/// A plain HTTP/1.0 `GET path` to `addr`, bounded by socket timeouts: the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    Ok((status, body.to_owned()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` every `every` until it returns `Some`, or fails after `timeout`.
pub async fn poll<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(
                format!("{what}: not within {timeout:?} (last error: {last_error})").into(),
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// Starts a watchdog that sends SIGTERM to `child` if this test process dies without running its
/// cleanup (a killed run must not leave a server behind). `name` is the watchdog's `$0`, shown by
/// `ps`. The caller kills and reaps the watchdog when it stops `child` itself.
pub fn spawn_watchdog(child: &Child, name: &str) -> std::io::Result<Child> {
    Command::new("bash")
        .args([
            "-c",
            r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
               kill -0 "$1" 2>/dev/null || kill -TERM "$2" 2>/dev/null; exit 0"#,
            name,
        ])
        .arg(std::process::id().to_string())
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A server process a test started (kube-harden), with its watchdog ([`spawn_watchdog`]).
/// [`Supervised::stop`], also run on drop, sends SIGTERM and then SIGKILL after 10 s.
#[derive(Debug)]
pub struct Supervised {
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl Supervised {
    /// Watches `child`; `name` is the watchdog's `$0`. If the watchdog cannot start, `child` is
    /// killed.
    pub fn watch(mut child: Child, name: &str) -> std::io::Result<Self> {
        match spawn_watchdog(&child, name) {
            Ok(watchdog) => Ok(Self {
                child: Some(child),
                watchdog: Some(watchdog),
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The exit status once the process has exited (or was stopped), `None` while it runs.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait(),
            None => Ok(Some(ExitStatus::default())),
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Stops the process: SIGTERM, then SIGKILL after 10 s; then the watchdog (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
