//! `--resolve-images` against registries on 127.0.0.1 that misbehave on purpose: down, slow
//! past the budget, 401/403/404, a config that is not JSON or is endless, an index without the
//! node's platform, a digest mismatch, a redirect loop. Each review goes through the real
//! server and must answer what it answers without lookups (same patch) plus one warning naming
//! the image and the reason. How long each fallback took is printed (no timed assertions:
//! `cargo test --test tests it::images -- --nocapture`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube_harden::admission::{self, Mode};
use kube_harden::harden::Policy;
use kube_harden::registry::{RegistryMetrics, Resolver, Settings};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::support::*;

/// The budget the tests give the registry: ample for a local registry's answer even on a loaded
/// machine (a failure must be reported for its own reason, not as a timeout), well under the
/// slow registry's 30 s.
const BUDGET: Duration = Duration::from_secs(2);

/// The review deadline of the servers under test (above [`BUDGET`], as `serve` requires).
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// How the registry behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// A well-formed image: index -> linux/amd64 manifest -> config (USER 1001:1001, a VOLUME).
    Good,
    /// Answers nothing for 30 s.
    Slow,
    /// 401 on everything.
    Unauthorized,
    /// 403 on everything.
    Forbidden,
    /// 404 for the manifest.
    NotFound,
    /// The config blob is not JSON (its digest is right).
    ConfigNotJson,
    /// The config blob's descriptor says 200 bytes; the blob is 1 GiB, streamed.
    ConfigTooBig,
    /// The index lists linux/arm64 and windows/amd64 only.
    NoPlatform,
    /// The config blob does not hash to its descriptor's digest.
    DigestMismatch,
    /// Every request is redirected to itself.
    RedirectLoop,
}

fn digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The documents a registry serves for `app:1`.
struct Image {
    index: Vec<u8>,
    manifest: Vec<u8>,
    manifest_digest: String,
    config: Vec<u8>,
    config_digest: String,
}

impl Image {
    fn new(behaviour: Behaviour) -> Self {
        let good_config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": "1001:1001", "Volumes": {"/data": {}}, "Env": ["TMPDIR=/scratch"]},
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        let (config, config_digest, config_size) = match behaviour {
            Behaviour::ConfigNotJson => {
                let c = b"this is not JSON".to_vec();
                let d = digest(&c);
                (c.clone(), d, c.len())
            }
            Behaviour::ConfigTooBig => (Vec::new(), digest(b"x"), 200),
            Behaviour::DigestMismatch => {
                let mut tampered = good_config.clone();
                tampered[0] = b' ';
                (tampered, digest(&good_config), good_config.len())
            }
            _ => (good_config.clone(), digest(&good_config), good_config.len()),
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": []
        }))
        .unwrap();
        let manifest_digest = digest(&manifest);
        let platforms = if behaviour == Behaviour::NoPlatform {
            vec![("linux", "arm64"), ("windows", "amd64")]
        } else {
            vec![("linux", "arm64"), ("linux", "amd64")]
        };
        let entries: Vec<Value> = platforms
            .iter()
            .map(|(os, arch)| {
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest.len(),
                       "platform": {"os": os, "architecture": arch}})
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries
        }))
        .unwrap();
        Self {
            index,
            manifest,
            manifest_digest,
            config,
            config_digest,
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, data: Vec<u8>) -> Response<Body> {
    let digest = digest(&data);
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("docker-content-digest", digest)
        .body(Full::new(Bytes::from(data)).boxed())
        .unwrap()
}

fn error(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"no")).boxed())
        .unwrap()
}

async fn answer(behaviour: Behaviour, image: &Image, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match behaviour {
        Behaviour::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return error(StatusCode::SERVICE_UNAVAILABLE);
        }
        Behaviour::Unauthorized => return error(StatusCode::UNAUTHORIZED),
        Behaviour::Forbidden => return error(StatusCode::FORBIDDEN),
        Behaviour::RedirectLoop => {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header("location", path)
                .body(Full::new(Bytes::new()).boxed())
                .unwrap();
        }
        _ => {}
    }
    if path == "/v2/" {
        return full(StatusCode::OK, "application/json", b"{}".to_vec());
    }
    if path == "/v2/app/manifests/1" {
        if behaviour == Behaviour::NotFound {
            return error(StatusCode::NOT_FOUND);
        }
        return full(
            StatusCode::OK,
            "application/vnd.oci.image.index.v1+json",
            image.index.clone(),
        );
    }
    if path == format!("/v2/app/manifests/{}", image.manifest_digest) {
        return full(
            StatusCode::OK,
            "application/vnd.oci.image.manifest.v1+json",
            image.manifest.clone(),
        );
    }
    if path == format!("/v2/app/blobs/{}", image.config_digest) {
        if behaviour == Behaviour::ConfigTooBig {
            // 1 GiB in 64 KiB chunks, no Content-Length.
            let chunk = Bytes::from(vec![b'{'; 64 * 1024]);
            let stream = futures_util::stream::iter(0..16 * 1024)
                .map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone())));
            return Response::new(BodyExt::boxed(StreamBody::new(stream)));
        }
        return Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(image.config.clone())).boxed())
            .unwrap();
    }
    error(StatusCode::NOT_FOUND)
}

/// A registry on 127.0.0.1 behaving as `behaviour`; counts the requests it gets.
struct Registry {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Registry {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let image = Arc::new(Image::new(behaviour));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (image, counter) = (Arc::clone(&image), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let image = Arc::clone(&image);
                        async move { Ok::<_, Infallible>(answer(behaviour, &image, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn settings(host: &str) -> Settings {
    Settings {
        budget: BUDGET,
        insecure: vec![host.to_owned()],
        ..Settings::default()
    }
}

/// Settings where success is asserted, not speed: a budget no loaded machine runs past.
fn ample(host: &str) -> Settings {
    Settings {
        budget: Duration::from_secs(20),
        ..settings(host)
    }
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "app", "namespace": "team-a"},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

/// Reviews a Pod running `host/app:1` through a server resolving images; checks the answer is
/// today's plus a warning with `reason`, and returns how long the review took.
async fn review_falls_back(host: &str, reason: &str) -> Duration {
    let image = format!("{host}/app:1");
    let review = review_for(&pod(&image), "", "Pod", "pods", "CREATE");
    let body = serde_json::to_vec(&review).unwrap();
    let blind = admission::review(&body, Mode::Enforce, &Policy::default());
    let blind: Value = serde_json::from_slice(&blind.body).unwrap();

    let host_owned = host.to_owned();
    let server = Running::start(move |c| {
        c.images = Some(settings(&host_owned));
        c.review_timeout = REVIEW_TIMEOUT;
    })
    .await;
    let mut client = server.client(Version::Http1).await;
    let started = Instant::now();
    let (status, response) = client.review("/mutate", &review).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(
        response["response"]["patch"], blind["response"]["patch"],
        "{reason}: the same patch as without lookups"
    );
    let warnings: Vec<&str> = response["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let blind_warnings = blind["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), blind_warnings.len() + 1, "{warnings:?}");
    let fallback = warnings
        .iter()
        .find(|w| w.contains("hardened without its configuration"))
        .unwrap_or_else(|| panic!("no fallback warning in {warnings:?}"));
    assert!(fallback.contains(&image), "{fallback}");
    assert!(fallback.contains(&format!("({reason})")), "{fallback}");
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            &format!("kube_harden_image_fallbacks_total{{reason=\"{reason}\"}}")
        ),
        1.0,
        "{metrics}"
    );
    println!("fallback {reason:>16}: review answered in {elapsed:?} (budget {BUDGET:?})");
    server.stop().await;
    elapsed
}

async fn hostile(behaviour: Behaviour, reason: &str) {
    let registry = Registry::start(behaviour).await;
    review_falls_back(&registry.addr.to_string(), reason).await;
    assert!(
        registry.requests.load(Ordering::Relaxed) > 0,
        "the registry was asked"
    );
}

#[tokio::test]
async fn registry_down() {
    let addr = free_addr();
    review_falls_back(&addr.to_string(), "unreachable").await;
}

#[tokio::test]
async fn registry_slow_past_the_budget() {
    hostile(Behaviour::Slow, "timeout").await;
}

#[tokio::test]
async fn registry_401() {
    hostile(Behaviour::Unauthorized, "unauthorized").await;
}

#[tokio::test]
async fn registry_403() {
    hostile(Behaviour::Forbidden, "forbidden").await;
}

#[tokio::test]
async fn registry_404() {
    hostile(Behaviour::NotFound, "not_found").await;
}

#[tokio::test]
async fn config_not_json() {
    hostile(Behaviour::ConfigNotJson, "bad_content").await;
}

#[tokio::test]
async fn config_too_big() {
    hostile(Behaviour::ConfigTooBig, "too_big").await;
}

#[tokio::test]
async fn index_without_the_platform() {
    hostile(Behaviour::NoPlatform, "no_platform").await;
}

#[tokio::test]
async fn digest_mismatch() {
    hostile(Behaviour::DigestMismatch, "digest_mismatch").await;
}

#[tokio::test]
async fn redirect_loop() {
    hostile(Behaviour::RedirectLoop, "redirect").await;
}

/// The well-behaved registry: the facts arrive, are cached, and a second lookup of the same
/// image (by tag and by digest) does not ask the registry again.
#[tokio::test]
async fn good_registry_facts_are_read_and_cached() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let resolver = Resolver::new(ample(&host), RegistryMetrics::unregistered()).unwrap();
    let image = format!("{host}/app:1");
    let started = Instant::now();
    let resolved = resolver.resolve(std::slice::from_ref(&image)).await;
    println!("cold fetch from a local registry: {:?}", started.elapsed());
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let facts = &resolved.lookup[&image];
    assert_eq!(facts.user.as_deref(), Some("1001:1001"));
    assert_eq!(facts.volumes, ["/data"]);
    assert_eq!(facts.env, ["TMPDIR=/scratch"]);
    assert_eq!(facts.digest, Image::new(Behaviour::Good).manifest_digest);
    let asked = registry.requests.load(Ordering::Relaxed);
    let again = resolver.cached(std::slice::from_ref(&image));
    assert!(again.missing.is_empty());
    assert_eq!(again.lookup[&image], *facts);
    assert_eq!(registry.requests.load(Ordering::Relaxed), asked);
}

/// Concurrent reviews of one image share one fetch.
#[tokio::test]
async fn concurrent_lookups_of_one_image_are_one_fetch() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let resolver = Resolver::new(ample(&host), RegistryMetrics::unregistered()).unwrap();
    let image = vec![format!("{host}/app:1")];
    let lookups = (0..20).map(|_| resolver.resolve(&image));
    let all = futures_util::future::join_all(lookups).await;
    assert!(
        all.iter()
            .all(|r| r.lookup.len() == 1 && r.warnings.is_empty())
    );
    // One fetch: the index, the manifest, the config, each after a `GET /v2/` (oci-client asks
    // it before every anonymous request). A second fetch would double that.
    let asked = registry.requests.load(Ordering::Relaxed);
    assert!(asked <= 6, "{asked} requests for 20 concurrent lookups");
}

/// `kube-harden harden --resolve-images`: the same documents as without it when the registry is
/// down, with the warning on stderr; no warning when the registry answers. `HOME` and
/// `DOCKER_CONFIG` point at an empty directory: no credentials.
#[tokio::test]
async fn offline_harden_resolves_images_and_falls_back() {
    let good = Registry::start(Behaviour::Good).await;
    let down = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pods.yaml");
    let good_image = format!("{}/app:1", good.addr);
    let down_image = format!("{down}/app:1");
    let list = json!({"apiVersion": "v1", "kind": "List",
                      "items": [pod(&good_image), pod(&down_image)]});
    std::fs::write(&manifest, serde_json::to_vec(&list).unwrap()).unwrap();
    let run = |extra: &[String]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kube-harden"));
        command
            .args(["harden", "-f"])
            .arg(&manifest)
            .args(extra)
            .env("HOME", dir.path())
            .env("DOCKER_CONFIG", dir.path());
        // On the blocking pool: the registry answers from this test's runtime.
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let blind = run(&["-o".into(), "json".into()]).await;
    let insecure = format!("--registry-insecure={},{down}", good.addr);
    let started = Instant::now();
    let resolved = run(&[
        "--resolve-images".into(),
        "--registry-budget=20s".into(),
        insecure,
        "-o".into(),
        "json".into(),
    ])
    .await;
    println!("offline harden --resolve-images: {:?}", started.elapsed());
    assert!(resolved.status.success(), "{resolved:?}");
    let items = |out: &std::process::Output| -> Vec<Value> {
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list["items"].as_array().unwrap().clone()
    };
    let (blind, resolved_items) = (items(&blind), items(&resolved));
    // The image that was read: its USER (1001:1001) instead of 2866.
    let user = |pod: &Value| pod.pointer("/spec/securityContext/runAsUser").cloned();
    assert_eq!(user(&blind[0]), Some(json!(2866)));
    assert_eq!(
        user(&resolved_items[0]),
        Some(json!(1001)),
        "{:#}",
        resolved_items[0]
    );
    // The image that was not: exactly today's answer.
    assert_eq!(resolved_items[1], blind[1]);
    let stderr = String::from_utf8_lossy(&resolved.stderr);
    assert!(
        stderr.contains(&down_image) && stderr.contains("(unreachable)"),
        "{stderr}"
    );
    assert!(!stderr.contains(&good_image), "{stderr}");
    assert!(good.requests.load(Ordering::Relaxed) > 0);
}

/// A tag past `--registry-tag-ttl` is checked with one HEAD: the digest has not changed, so the
/// facts come from the cache and the manifests and config are not fetched again.
#[tokio::test]
async fn a_stale_tag_is_checked_with_a_head() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let mut stale = ample(&host);
    stale.limits.tag_ttl = Duration::ZERO;
    let resolver = Resolver::new(stale, RegistryMetrics::unregistered()).unwrap();
    let image = vec![format!("{host}/app:1")];
    let first = resolver.resolve(&image).await;
    let full = registry.requests.load(Ordering::Relaxed);
    let second = resolver.resolve(&image).await;
    let head = registry.requests.load(Ordering::Relaxed) - full;
    assert_eq!(first.lookup, second.lookup);
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    // GET /v2/ then HEAD of the tag; a full fetch is 6 requests.
    assert!(
        head <= 2,
        "{head} requests to check a stale tag (a full fetch: {full})"
    );
}

/// `serve` refuses a registry budget that leaves the review no time to harden.
#[test]
fn serve_refuses_a_budget_not_under_the_review_timeout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args([
            "serve",
            "--tls-cert-file=/nonexistent",
            "--tls-key-file=/nonexistent",
            "--resolve-images",
            "--registry-budget=2s",
            "--review-timeout=2s",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--registry-budget") && stderr.contains("--review-timeout"),
        "{stderr}"
    );
}

/// Through the server: the image's USER reaches the rules (runAsUser 1001, not 2866), on the
/// cold review and on the next one, answered from the cache.
#[tokio::test]
async fn serve_hardens_to_fit_the_image() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let image = format!("{host}/app:1");
    let object = pod(&image);
    let review = review_for(&object, "", "Pod", "pods", "CREATE");
    let server = Running::start(move |c| {
        c.images = Some(ample(&host));
        c.review_timeout = Duration::from_secs(30);
    })
    .await;
    let mut client = server.client(Version::Http1).await;
    for round in ["cold", "warm"] {
        let started = Instant::now();
        let (status, response) = client.review("/mutate", &review).await;
        println!("serve, {round} cache: {:?}", started.elapsed());
        assert_eq!(status, StatusCode::OK);
        let hardened = apply_response_patch(&response, &object);
        assert_eq!(
            hardened.pointer("/spec/securityContext/runAsUser"),
            Some(&json!(1001)),
            "{round}: {hardened:#}"
        );
    }
    let metrics = server.metrics_text().await;
    let lookups = |result: &str| {
        metric(
            &metrics,
            &format!("kube_harden_image_cache_lookups_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!((lookups("miss"), lookups("hit")), (1.0, 1.0), "{metrics}");
    server.stop().await;
}
