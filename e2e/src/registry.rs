//! A real OCI registry on 127.0.0.1 for the suites: the CNCF Distribution registry v3
//! (`github.com/distribution/distribution/v3/cmd/registry`) and crane
//! (`github.com/google/go-containerregistry/cmd/crane`) to push OCI image layouts to it, both
//! built from Go modules by `e2e/build-registry.sh` (cached by version; built here when missing).
//!
//! ```text
//!  Registry::start(dir, Options { auth, tls })
//!    config.yml: filesystem storage in <dir>/storage, 127.0.0.1:<free port>,
//!                htpasswd (USER / PASSWORD) when auth, a certificate for 127.0.0.1 when tls
//!    registry serve ──► GET /v2/ answers (200, or 401 with auth) ──► ready
//!  push_archive / push_layout ──► crane push (auth from <dir>/docker/config.json, CA or --insecure)
//!  containerd_hosts(certs.d) ──► <certs.d>/127.0.0.1:<port>/hosts.toml for the node's containerd
//!  stop / drop ──► SIGTERM (SIGKILL after 10 s), <dir> removed; a watchdog stops it if the test
//!                  process dies
//! ```
//!
//! Distribution's configuration: <https://distribution.github.io/distribution/about/configuration/>;
//! containerd's hosts.toml: <https://github.com/containerd/containerd/blob/main/docs/hosts.md>.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::process::{self, Supervised};
use crate::webhook::Tls;
use crate::{Result, repo_root};

/// The user of a registry started with [`Options::auth`].
pub const USER: &str = "kube-harden-e2e";
/// Its password (test-only, published: it protects a throwaway registry on 127.0.0.1).
pub const PASSWORD: &str = "kube-harden-e2e-secret";
/// `USER:bcrypt(PASSWORD)` (cost 4; Distribution's htpasswd accepts bcrypt only). Made with
/// Python's `crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`.
const HTPASSWD: &str =
    "kube-harden-e2e:$2b$04$7U.W2H5Ff9HZhpxSa.M1XunR6xUIrdDa99ExNHo9yHg45wba3TJ66";

/// How long a cold `e2e/build-registry.sh` may take (about 3 min on 2 shared cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long the registry may take to answer `/v2/` once started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The most [`Registry::get`] reads of one response (manifests and configs are kilobytes).
const MAX_RESPONSE: u64 = 64 << 20;
/// How long one push may take (the zoo's largest image, jvm, is 145 MB).
const PUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// How the registry is started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// htpasswd authentication: [`USER`] / [`PASSWORD`]; anonymous requests get 401.
    pub auth: bool,
    /// HTTPS with a certificate for 127.0.0.1 signed by a CA made for this run
    /// ([`Registry::ca_pem`]); plain HTTP otherwise.
    pub tls: bool,
}

/// The registry and crane binaries (`e2e/build-registry.sh --print-env`).
#[derive(Debug, Clone)]
pub struct Tools {
    /// `registry` (Distribution).
    pub registry: PathBuf,
    /// `crane`.
    pub crane: PathBuf,
}

impl Tools {
    /// Builds the binaries when missing (instant when cached) and returns their paths.
    pub fn build() -> Result<Self> {
        let script = repo_root().join("e2e/build-registry.sh");
        let status = process::run_visible(&mut Command::new(&script), BUILD_TIMEOUT)?;
        if !status.success() {
            return Err(format!(
                "{} failed ({status}); its output is above",
                script.display()
            )
            .into());
        }
        let env = process::run(
            Command::new(&script).arg("--print-env"),
            None,
            Duration::from_secs(30),
        )?
        .ok("e2e/build-registry.sh --print-env")?;
        let var = |name: &str| {
            env.stdout
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .ok_or_else(|| format!("e2e/build-registry.sh --print-env: no {name} binary"))
        };
        Ok(Self {
            registry: var("REGISTRY_BIN")?,
            crane: var("CRANE_BIN")?,
        })
    }
}

/// A running registry; stopped, and its directory removed, on drop.
#[derive(Debug)]
pub struct Registry {
    server: Supervised,
    dir: PathBuf,
    addr: SocketAddr,
    options: Options,
    tls: Option<Tls>,
    crane: PathBuf,
}

impl Registry {
    /// Starts a registry with `options` whose configuration, storage and logs live in `dir`
    /// (emptied first), on a free port of 127.0.0.1, and waits until `/v2/` answers. Builds the
    /// binaries when missing. A port taken by another process in the meantime is retried.
    pub fn start(dir: &Path, options: Options) -> Result<Self> {
        let tools = Tools::build()?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("storage"))?;
        let dir = dir.canonicalize()?;
        let tls = options
            .tls
            .then(|| Tls::create(&dir.join("tls")))
            .transpose()?;
        if options.auth {
            std::fs::write(dir.join("htpasswd"), format!("{HTPASSWD}\n"))?;
        }
        let mut last_error = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
            std::fs::write(
                dir.join("config.yml"),
                config(&dir, addr, options, tls.as_ref()),
            )?;
            let log = std::fs::File::create(dir.join("registry.log"))?;
            let child = Command::new(&tools.registry)
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", tools.registry.display()))?;
            let mut server = Supervised::watch(child, "kube-harden-e2e-registry-watchdog")?;
            match wait_ready(&mut server, addr, options) {
                Ok(()) => {
                    write_docker_config(&dir.join("docker"), &addr.to_string(), options.auth)?;
                    return Ok(Self {
                        server,
                        dir,
                        addr,
                        options,
                        tls,
                        crane: tools.crane,
                    });
                }
                Err(e) => {
                    server.stop();
                    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                    last_error = format!("{e}\n--- registry.log\n{log}");
                    // Another process took the free port in the meantime: try another one.
                    if !log.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("the registry did not start: {last_error}").into())
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` or `https://...`.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `127.0.0.1:<port>/<repository_and_tag>`, e.g. `reference("legacy/nginx:1")`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.addr)
    }

    /// The options it was started with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// [`USER`] and [`PASSWORD`] when it was started with auth.
    pub fn credentials(&self) -> Option<(&'static str, &'static str)> {
        self.options.auth.then_some((USER, PASSWORD))
    }

    /// The CA that signed its certificate (PEM), when it serves HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// The file of [`Registry::ca_pem`].
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|_| self.dir.join("tls/ca.crt"))
    }

    /// A docker `config.json` with its credentials (`{"auths":{}}` without auth): the content
    /// of a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`.
    pub fn docker_config_json(&self) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.docker_config_dir().join("config.json"),
        )?)
    }

    /// The directory of [`Registry::docker_config_json`] (`DOCKER_CONFIG` for docker-style
    /// clients).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Runs `crane <args>` against this registry (its credentials, its CA or `--insecure`),
    /// for at most 5 minutes; fails when crane does.
    pub fn crane(&self, args: &[&str]) -> Result<process::Output> {
        let mut cmd = Command::new(&self.crane);
        cmd.args(args)
            .env("DOCKER_CONFIG", self.docker_config_dir());
        match self.ca_file() {
            // Go reads extra roots from SSL_CERT_FILE (this CA only: nothing else is reached).
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.arg("--insecure"),
        };
        process::run(&mut cmd, None, PUSH_TIMEOUT)?.ok(&format!("crane {}", args.join(" ")))
    }

    /// Pushes the single image of the OCI image layout `layout` as `<host>/<repository:tag>`;
    /// returns the manifest digest the registry stored it under.
    pub fn push_layout(&self, layout: &Path, repository_and_tag: &str) -> Result<String> {
        let reference = self.reference(repository_and_tag);
        let layout = layout.to_str().ok_or("layout path is not UTF-8")?;
        let out = self.crane(&["push", layout, &reference])?;
        // crane prints the pushed reference with its digest: <host>/<repo>@sha256:<hex>.
        out.stdout
            .trim()
            .rsplit_once('@')
            .map(|(_, digest)| digest.to_owned())
            .filter(|d| d.starts_with("sha256:"))
            .ok_or_else(|| format!("crane push printed no digest: {:?}", out.stdout).into())
    }

    /// Pushes an OCI archive (a tar of an image layout, as e2e/images/build.sh and
    /// scripts/image-build.sh write) as `<host>/<repository:tag>`; returns the manifest digest.
    pub fn push_archive(&self, archive: &Path, repository_and_tag: &str) -> Result<String> {
        let unpacked = self.dir.join("unpacked");
        let _ = std::fs::remove_dir_all(&unpacked);
        std::fs::create_dir_all(&unpacked)?;
        process::run(
            Command::new("tar")
                .arg("-xf")
                .arg(archive)
                .arg("-C")
                .arg(&unpacked),
            None,
            PUSH_TIMEOUT,
        )?
        .ok(&format!("tar -xf {}", archive.display()))?;
        let pushed = self.push_layout(&unpacked, repository_and_tag);
        let _ = std::fs::remove_dir_all(&unpacked);
        pushed
    }

    /// Writes `<certs_d>/<host>/hosts.toml` so that a containerd whose CRI image service has
    /// `config_path = "<certs_d>"` pulls `<host>/...` from this registry (plain HTTP, or HTTPS
    /// trusting [`Registry::ca_file`]); returns the file. Credentials are not containerd's
    /// business: with auth, the kubelet sends them from the pod's `imagePullSecrets`.
    pub fn containerd_hosts(&self, certs_d: &Path) -> Result<PathBuf> {
        let dir = certs_d.join(self.host());
        std::fs::create_dir_all(&dir)?;
        let mut toml = format!(
            "# Written by the e2e suite for its registry (e2e/src/registry.rs).\n\
             server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            url = self.url()
        );
        if let Some(ca) = self.ca_file() {
            toml.push_str(&format!("  ca = \"{}\"\n", ca.display()));
        }
        let file = dir.join("hosts.toml");
        std::fs::write(&file, toml)?;
        Ok(file)
    }

    /// A plain-HTTP `GET path` (HTTP/1.0, with the credentials when it has auth): the status
    /// and the body (its first 64 MiB). Not for a registry started with TLS (use
    /// [`Registry::crane`]).
    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        self.get_as(path, self.credentials())
    }

    fn get_as(&self, path: &str, credentials: Option<(&str, &str)>) -> Result<(u16, Vec<u8>)> {
        if self.options.tls {
            return Err("Registry::get speaks plain HTTP; this registry serves HTTPS".into());
        }
        http_get(self.addr, path, credentials)
    }

    /// [`Registry::get`] with no credentials.
    pub fn get_anonymous(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        self.get_as(path, None)
    }

    /// Stops the registry and removes its directory (idempotent; also done on drop).
    pub fn stop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `sha256:<hex>` of `bytes`: the digest a registry names content by.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The manifest media types [`Registry::get`] accepts (OCI and Docker, images and indexes).
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json";

/// Distribution's configuration file.
fn config(dir: &Path, addr: SocketAddr, options: Options, tls: Option<&Tls>) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: kube-harden-e2e-not-a-secret\n",
        storage = dir.join("storage").display(),
    );
    if let Some(tls) = tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            tls.cert_file.display(),
            tls.key_file.display()
        ));
    }
    if options.auth {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: kube-harden-e2e\n    path: {}\n",
            dir.join("htpasswd").display()
        ));
    }
    yaml
}

/// `<dir>/config.json` in docker's format, with `host`'s credentials when `auth`.
fn write_docker_config(dir: &Path, host: &str, auth: bool) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let auths = if auth {
        serde_json::json!({host: {"auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))}})
    } else {
        serde_json::json!({})
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&serde_json::json!({ "auths": auths }))?,
    )?;
    Ok(())
}

/// A plain-HTTP/1.0 `GET path` to `addr` with the manifest media types accepted and basic auth
/// when `credentials`, bounded by socket timeouts: the status and the body.
fn http_get(
    addr: SocketAddr,
    path: &str,
    credentials: Option<(&str, &str)>,
) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let auth = credentials
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET {path} HTTP/1.0\r\nHost: {}\r\n{auth}Accept: {}\r\n\r\n",
            addr, ACCEPT
        )
        .as_bytes(),
    )?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    Ok((status, response[split + 4..].to_vec()))
}

/// Polls `GET /v2/` until the registry answers (200, or 401 when it wants credentials); with
/// TLS, until it accepts a TCP connection (crane's push proves the rest).
fn wait_ready(server: &mut Supervised, addr: SocketAddr, options: Options) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = server.try_wait()? {
            return Err(format!("the registry exited ({status})").into());
        }
        let up = if options.tls {
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        } else {
            matches!(http_get(addr, "/v2/", None), Ok((200 | 401, _)))
        };
        if up {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer on {addr} within {READY_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
