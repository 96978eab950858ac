//! The suite's OCI registry (e2e/src/registry.rs): a real Distribution v3 on 127.0.0.1, with
//! htpasswd auth over plain HTTP and over TLS. A small image made by scripts/oci-image.py (no
//! root needed) is pushed with crane and read back by tag and by digest; anonymous requests get
//! 401, and a client without the run's CA is refused. The zoo's own round trip runs in the
//! legacy suite (it needs root to build the images).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube_harden_e2e::registry::{Options, PASSWORD, Registry, Tools, USER, sha256_digest};
use kube_harden_e2e::{Result, process, repo_root, target_dir};
use serde_json::Value;

/// A scratch directory of one test under target/e2e-registry/, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Self> {
        let dir = target_dir(&repo_root()).join("e2e-registry").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A registry started with `options` (its directory in a fresh scratch directory) with the
/// small image pushed as `e2e/small:1`. Fields drop in order: the registry stops before the
/// scratch directory goes.
struct Pushed {
    registry: Registry,
    built: String,
    scratch: Scratch,
}

/// Starts a registry with `options`, pushes the small image and checks the digest the registry
/// stored it under is the one it was built with.
fn pushed(name: &str, options: Options) -> Result<Pushed> {
    let scratch = Scratch::new(name)?;
    let (archive, built) = small_image(&scratch.0)?;
    let registry = Registry::start(&scratch.0.join("registry"), options)?;
    let pushed = registry.push_archive(&archive, "e2e/small:1")?;
    assert_eq!(pushed, built, "the registry's digest of the pushed image");
    Ok(Pushed {
        registry,
        built,
        scratch,
    })
}

/// Builds a one-layer image (`USER 10001:10001`, `VOLUME /data`) as an OCI archive in `dir`;
/// returns the archive and its manifest digest.
fn small_image(dir: &Path) -> Result<(PathBuf, String)> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("opt/app"))?;
    std::fs::write(
        rootfs.join("opt/app/hello.txt"),
        "hello from the e2e registry\n",
    )?;
    let archive = dir.join("small.tar");
    let out = process::run(
        Command::new("python3")
            .arg(repo_root().join("scripts/oci-image.py"))
            .args([
                "build",
                "--name",
                "kube-harden.local/e2e/small:1",
                "--user",
                "10001:10001",
            ])
            .args(["--volume", "/data", "--layer"])
            .arg(&rootfs)
            .arg("-o")
            .arg(&archive),
        None,
        Duration::from_secs(60),
    )?
    .ok("scripts/oci-image.py build")?;
    Ok((archive, out.stdout.trim().to_owned()))
}

/// What the registry returned for the image: manifest bytes by tag and by digest, config bytes.
struct ReadBack {
    by_tag: Vec<u8>,
    by_digest: Vec<u8>,
    config: Vec<u8>,
}

/// Checks a read-back against the digest the image was built with: both manifests are the
/// same bytes hashing to it, the config hashes to the name the manifest gives it and says
/// `User 10001:10001` and `Volumes {"/data": {}}`.
fn check(read: &ReadBack, built: &str) -> Result<()> {
    assert_eq!(sha256_digest(&read.by_tag), built, "manifest by tag");
    assert_eq!(read.by_digest, read.by_tag, "manifest by digest");
    let manifest: Value = serde_json::from_slice(&read.by_tag)?;
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(sha256_digest(&read.config).as_str()),
        "config digest"
    );
    let config: Value = serde_json::from_slice(&read.config)?;
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(
        config["config"]["Volumes"],
        serde_json::json!({"/data": {}})
    );
    Ok(())
}

/// 200's body, else an error with the status.
fn ok_body(path: &str, (status, body): (u16, Vec<u8>)) -> Result<Vec<u8>> {
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("GET {path}: {status} {}", String::from_utf8_lossy(&body)).into())
    }
}

#[test]
fn plain_http_with_auth_round_trip_and_401() -> Result<()> {
    let Pushed {
        registry, built, ..
    } = &pushed(
        "plain",
        Options {
            auth: true,
            tls: false,
        },
    )?;
    assert_eq!(registry.credentials(), Some((USER, PASSWORD)));
    assert!(registry.url().starts_with("http://127.0.0.1:"));

    let get = |path: &str| ok_body(path, registry.get(path)?);
    let by_tag = get("/v2/e2e/small/manifests/1")?;
    let by_digest = get(&format!("/v2/e2e/small/manifests/{built}"))?;
    let manifest: Value = serde_json::from_slice(&by_tag)?;
    let config_digest = manifest["config"]["digest"].as_str().ok_or("no config")?;
    let config = get(&format!("/v2/e2e/small/blobs/{config_digest}"))?;
    check(
        &ReadBack {
            by_tag,
            by_digest,
            config,
        },
        built,
    )?;

    // Without credentials: 401 for the API root, the manifest and the blob alike.
    for path in [
        "/v2/".to_owned(),
        "/v2/e2e/small/manifests/1".to_owned(),
        format!("/v2/e2e/small/blobs/{config_digest}"),
    ] {
        let (status, _) = registry.get_anonymous(&path)?;
        assert_eq!(status, 401, "anonymous GET {path}");
    }
    // A tag that was never pushed: 404 with credentials.
    assert_eq!(registry.get("/v2/e2e/small/manifests/2")?.0, 404);

    // The docker config the registry hands out carries the same credentials.
    let docker: Value = serde_json::from_str(&registry.docker_config_json()?)?;
    assert!(docker["auths"][registry.host()]["auth"].is_string());
    Ok(())
}

#[test]
fn tls_with_auth_round_trip_and_unknown_ca_refused() -> Result<()> {
    let Pushed {
        registry,
        built,
        scratch,
    } = &pushed(
        "tls",
        Options {
            auth: true,
            tls: true,
        },
    )?;
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    assert!(
        registry
            .ca_pem()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );

    let tag = registry.reference("e2e/small:1");
    let digest_ref = format!("{}@{built}", registry.reference("e2e/small"));
    let by_tag = registry.crane(&["manifest", &tag])?.stdout.into_bytes();
    let by_digest = registry
        .crane(&["manifest", &digest_ref])?
        .stdout
        .into_bytes();
    let config = registry
        .crane(&["config", &digest_ref])?
        .stdout
        .into_bytes();
    check(
        &ReadBack {
            by_tag,
            by_digest,
            config,
        },
        built,
    )?;

    // crane without the run's CA (the system roots only): the certificate is refused.
    let tools = Tools::build()?;
    let refused = process::run(
        Command::new(&tools.crane)
            .args(["digest", &tag])
            .env("DOCKER_CONFIG", registry.docker_config_dir())
            .env_remove("SSL_CERT_FILE"),
        None,
        Duration::from_secs(60),
    )?;
    assert!(!refused.status.success(), "crane trusted an unknown CA");
    assert!(
        refused.stderr.contains("certificate"),
        "not a certificate error: {}",
        refused.stderr
    );
    // Right CA, no credentials: 401 (an empty docker config).
    let empty = scratch.0.join("no-credentials");
    std::fs::create_dir_all(&empty)?;
    std::fs::write(empty.join("config.json"), r#"{"auths":{}}"#)?;
    let anonymous = process::run(
        Command::new(&tools.crane)
            .args(["digest", &tag])
            .env("DOCKER_CONFIG", &empty)
            .env("SSL_CERT_FILE", registry.ca_file().ok_or("no CA file")?),
        None,
        Duration::from_secs(60),
    )?;
    assert!(!anonymous.status.success(), "anonymous crane got through");
    assert!(
        anonymous.stderr.contains("401") || anonymous.stderr.contains("UNAUTHORIZED"),
        "not a 401: {}",
        anonymous.stderr
    );
    Ok(())
}

#[test]
fn stop_removes_the_directory_and_frees_the_port() -> Result<()> {
    let scratch = Scratch::new("stop")?;
    let dir = scratch.0.join("registry");
    let mut registry = Registry::start(&dir, Options::default())?;
    let addr = registry.addr();
    assert_eq!(registry.get("/v2/")?.0, 200);
    registry.stop();
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "{addr} still answers"
    );
    Ok(())
}
