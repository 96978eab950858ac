//! `--resolve-images` against registries on 127.0.0.1 that misbehave on purpose: down, slow
//! past the budget, 401/403/404, a config that is not JSON or is endless, an index without the
//! node's platform, a digest mismatch, a redirect loop. Each review goes through the real
//! server and must answer what it answers without lookups (same patch) plus one warning naming
//! the image and the reason. How long each fallback took is printed (no timed assertions:
//! `cargo test --test tests it::images -- --nocapture`).
//!
//! This file holds the registry on 127.0.0.1 (its behaviours and the documents it serves) and
//! the fixtures the tests share; the misbehaving registries are in `fallback`, the well-behaved
//! one (facts read, cached, used by `serve` and `harden`) in `resolved`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube_harden::registry::Settings;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod fallback;
mod resolved;

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
