//! How the tests see what a replica serves: its certificate (through `openssl s_client`), a
//! verification of it, and admission reviews over new and kept-alive TLS connections.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kube_harden::certs::{CertInfo, parse_certificates};
use kube_harden_e2e::{Result, process};
use kube_harden_testkit::review_for;
use serde_json::{Value, json};

/// The certificate served on `port`, as an independent TLS client sees it.
pub(crate) fn served_certificate(port: u16) -> Result<CertInfo> {
    let out = process::run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ]),
        Some(b""),
        Duration::from_secs(10),
    )?;
    let certs = parse_certificates(&out.stdout)?;
    certs
        .into_iter()
        .next()
        .ok_or_else(|| format!("no certificate from 127.0.0.1:{port}: {}", out.stderr).into())
}

/// `openssl verify` of `leaf` against `ca_bundle` for a TLS server at 127.0.0.1.
pub(crate) fn openssl_verify(dir: &Path, ca_bundle: &str, leaf: &CertInfo) -> Result<()> {
    let ca = dir.join("verify-ca.pem");
    let cert = dir.join("verify-leaf.pem");
    std::fs::write(&ca, ca_bundle)?;
    std::fs::write(&cert, leaf.pem())?;
    let out = process::run(
        Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                "sslserver",
                "-verify_ip",
                "127.0.0.1",
                "-CAfile",
            ])
            .arg(&ca)
            .arg(&cert),
        None,
        Duration::from_secs(10),
    )?
    .ok("openssl verify")?;
    if out.stdout.trim_end().ends_with(": OK") {
        Ok(())
    } else {
        Err(format!("openssl verify: {}{}", out.stdout, out.stderr).into())
    }
}

/// A Pod CREATE AdmissionReview with this uid.
fn review_body(uid: &str) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "direct", "namespace": "direct"},
        "spec": {"containers": [{"name": "app", "image": "example.com/legacy-app:1.0"}]}
    });
    let mut review = review_for(&pod, "", "Pod", "pods", "CREATE");
    review["request"]["uid"] = json!(uid);
    review["request"]["namespace"] = json!("direct");
    review.to_string().into_bytes()
}

/// Checks that `body` answers review `uid` with a patch.
fn check_review(uid: &str, body: &[u8]) -> Result<()> {
    let review: Value = serde_json::from_slice(body)?;
    let response = &review["response"];
    if response["uid"] == uid && response["allowed"] == true && response["patch"].is_string() {
        Ok(())
    } else {
        Err(format!("unexpected review response: {review}").into())
    }
}

/// One review over a new TLS connection (a new client, so a new connection) that trusts
/// exactly `cas` and checks the name 127.0.0.1 (rustls, through kube's client stack).
pub(crate) async fn review_new_connection(port: u16, cas: &[Vec<u8>], uid: &str) -> Result<()> {
    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse()?);
    config.root_cert = Some(cas.to_vec());
    config.default_retry = false;
    config.read_timeout = Some(Duration::from_secs(10));
    let client = kube::Client::try_from(config)?;
    let request = http::Request::post("/mutate")
        .header("content-type", "application/json")
        .body(review_body(uid))?;
    let text = client.request_text(request).await?;
    check_review(uid, text.as_bytes())
}

/// One TLS connection kept open (an `openssl s_client` process that verifies the server against
/// a CA file and the name 127.0.0.1), carrying HTTP/1.1 requests one after another.
pub(crate) struct KeptAlive {
    child: Child,
    stdin: ChildStdin,
    responses: mpsc::Receiver<Result<(u16, Vec<u8>), String>>,
}

impl KeptAlive {
    /// Opens the connection to 127.0.0.1:`port`, trusting the CAs in `ca_file`; `openssl`'s
    /// output goes to `log`.
    pub(crate) fn open(port: u16, ca_file: &Path, log: &Path) -> Result<Self> {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-quiet",
                "-verify_return_error",
                "-verify_ip",
                "127.0.0.1",
                "-alpn",
                "http/1.1",
                "-CAfile",
            ])
            .arg(ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, responses) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let response = read_response(&mut reader);
                let closed = response.is_err();
                if tx.send(response).is_err() || closed {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            responses,
        })
    }

    /// One review on this connection; an error unless it is answered with a patch.
    pub(crate) fn review(&mut self, uid: &str) -> Result<()> {
        let body = review_body(uid);
        write!(
            self.stdin,
            "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )?;
        self.stdin.write_all(&body)?;
        self.stdin.flush()?;
        match self.responses.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok((200, body))) => check_review(uid, &body),
            Ok(Ok((status, body))) => {
                Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err("no response within 10s".into()),
        }
    }
}

impl Drop for KeptAlive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(reader: &mut impl BufRead) -> Result<(u16, Vec<u8>), String> {
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line {line:?}"))?;
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in the headers".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value
                .trim()
                .parse()
                .map_err(|_| format!("bad {header:?}"))?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// The DER of every certificate in `pem`.
pub(crate) fn ders(pem: &str) -> Result<Vec<Vec<u8>>> {
    Ok(parse_certificates(pem)?
        .into_iter()
        .map(|c| c.der)
        .collect())
}
