//! `--resolve-images` latency (issue 16), printed: the admission handler with image lookups off
//! against lookups on with a warm cache (the target: within 5%), and the latency a cold cache
//! adds to a review (p50, p99) against a registry on 127.0.0.1 (this file serves one: an index,
//! a linux/amd64 manifest and a config, under any repository name).
//!
//! Warm: both variants run the same review bodies, in pairs of short blocks whose order
//! alternates, so machine noise hits both alike; the figures are the median (and quartiles) of
//! the per-pair ratios, and the ratio of the fastest blocks (the least disturbed). Cold: every review names an
//! image not seen before, resolved as the server does (cache first, then the fetch, then the
//! review again).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube_harden::admission::{ImageSource, Mode, review, review_with_images};
use kube_harden::harden::{ImageLookup, Policy};
use kube_harden::metrics::RegistryMetrics;
use kube_harden::registry::{Resolver, Settings};
use kube_harden_bench::fixture;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The kube-harden binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The three documents every repository serves.
struct Docs {
    index: Bytes,
    manifest: Bytes,
    manifest_digest: String,
    config: Bytes,
    config_digest: String,
}

/// `fitted`: a config with a numeric USER, a VOLUME and an Env (the image-aware rules change
/// the answer); otherwise an empty `config` (the answer is the image-blind one).
fn docs(fitted: bool) -> Docs {
    let inner = if fitted {
        json!({"User": "1001:1001", "Volumes": {"/data": {}}, "Env": ["PATH=/bin"]})
    } else {
        json!({})
    };
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "config": inner, "rootfs": {"type": "layers", "diff_ids": []}}))
    .unwrap();
    let config_digest = digest(&config);
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": []}))
    .unwrap();
    let manifest_digest = digest(&manifest);
    let index = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}]}))
    .unwrap();
    Docs {
        index: index.into(),
        manifest: manifest.into(),
        manifest_digest,
        config: config.into(),
        config_digest,
    }
}

fn answer(docs: &Docs, path: &str) -> Response<Full<Bytes>> {
    let reply = |media: &str, body: &Bytes| {
        Response::builder()
            .header("content-type", media)
            .header("docker-content-digest", digest(body))
            .body(Full::new(body.clone()))
            .unwrap()
    };
    if path == "/v2/" {
        reply("application/json", &Bytes::from_static(b"{}"))
    } else if path.ends_with("/manifests/1") {
        reply("application/vnd.oci.image.index.v1+json", &docs.index)
    } else if path.ends_with(&format!("/manifests/{}", docs.manifest_digest)) {
        reply("application/vnd.oci.image.manifest.v1+json", &docs.manifest)
    } else if path.ends_with(&format!("/blobs/{}", docs.config_digest)) {
        reply("application/octet-stream", &docs.config)
    } else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    }
}

async fn serve_registry() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let docs = Arc::new((docs(false), docs(true)));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let docs = Arc::clone(&docs);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let path = req.uri().path();
                    let docs = if path.starts_with("/v2/fitted") {
                        &docs.1
                    } else {
                        &docs.0
                    };
                    let response = answer(docs, path);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr.to_string()
}

/// The review fixture with every container's image replaced by `image(i)`.
fn with_images(review_body: &[u8], image: impl Fn(usize) -> String) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(review_body).unwrap();
    let mut i = 0;
    let spec = review.pointer_mut("/request/object/spec").unwrap();
    let spec = if spec.get("template").is_some() {
        spec.pointer_mut("/template/spec").unwrap()
    } else {
        spec
    };
    for list in ["initContainers", "containers"] {
        for container in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            container["image"] = Value::from(image(i));
            i += 1;
        }
    }
    serde_json::to_vec(&review).unwrap()
}

/// The server's first pass: the cache's answer (src/server/images.rs).
struct FromCache<'a>(&'a Resolver, bool);

impl ImageSource for FromCache<'_> {
    fn lookup(&mut self, images: &[&str]) -> (ImageLookup, Vec<String>) {
        let found = self.0.cached(images);
        self.1 = !found.missing.is_empty();
        (found.lookup, found.warnings)
    }
}

/// Mean time of one call of `f` over `n` calls.
fn mean(n: u32, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed() / n
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = runtime.block_on(serve_registry());
    let settings = |budget| {
        let mut settings = Settings {
            budget,
            insecure: vec![host.clone()],
            ..Settings::default()
        };
        // Warm means warm for the whole run, however slow a loaded machine makes it.
        settings.limits.tag_ttl = Duration::from_secs(3600);
        settings
    };
    let policy = Policy::default();
    println!(
        "images: review with --resolve-images off vs on (warm cache), same bodies; plain: images \
         whose config says nothing (the lookup's own cost), fitted: USER, VOLUME, Env (plus the \
         image-aware rules' work: a different, larger patch)"
    );
    for (family, file) in [
        ("plain", "review-pod-create.json"),
        ("plain", "review-deployment-update.json"),
        ("plain", "review-pod-3-containers.json"),
        ("fitted", "review-pod-create.json"),
        ("fitted", "review-deployment-update.json"),
        ("fitted", "review-pod-3-containers.json"),
    ] {
        let body = with_images(&fixture(file), |i| format!("{host}/{family}{i}:1"));
        let resolver = runtime.block_on(async {
            let resolver = Resolver::new(
                settings(Duration::from_secs(5)),
                RegistryMetrics::throwaway(),
            )
            .unwrap();
            let images: Vec<String> = (0..16).map(|i| format!("{host}/{family}{i}:1")).collect();
            let warmed = resolver.resolve(&images).await;
            assert!(warmed.warnings.is_empty(), "{:?}", warmed.warnings);
            resolver
        });
        // 300 pairs of blocks of 200 reviews, the order within a pair alternating: machine
        // noise (other processes on the cores) hits both variants alike.
        let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let blind = || {
            mean(200, || {
                black_box(review(black_box(&body), Mode::Enforce, &policy));
            })
        };
        let warm = || {
            mean(200, || {
                let mut source = FromCache(&resolver, false);
                black_box(review_with_images(
                    black_box(&body),
                    Mode::Enforce,
                    &policy,
                    &mut source,
                ));
                assert!(!source.1, "warm: nothing missing");
            })
        };
        for pair in 0..300 {
            let (a, b) = if pair % 2 == 0 {
                let a = blind();
                (a, warm())
            } else {
                let b = warm();
                (blind(), b)
            };
            off.push(a);
            on.push(b);
            ratios.push(b.as_secs_f64() / a.as_secs_f64());
        }
        off.sort();
        on.sort();
        ratios.sort_by(f64::total_cmp);
        let pct = |r: f64| (r - 1.0) * 100.0;
        println!(
            "  {family:6} {file:30} off {:>8.1?} on (warm) {:>8.1?} | on/off: median of pairs {:+.1}% (IQR {:+.1}% .. {:+.1}%), fastest blocks {:+.1}%",
            off[off.len() / 2],
            on[on.len() / 2],
            pct(ratios[ratios.len() / 2]),
            pct(ratios[ratios.len() / 4]),
            pct(ratios[ratios.len() * 3 / 4]),
            pct(on[0].as_secs_f64() / off[0].as_secs_f64()),
        );
    }

    println!("images: added latency of a cold cache (each review names a new image)");
    let template = fixture("review-pod-create.json");
    let resolver = Resolver::new(
        settings(Duration::from_secs(1)),
        RegistryMetrics::throwaway(),
    )
    .unwrap();
    let n = 400;
    let mut added = Vec::with_capacity(n);
    for k in 0..n {
        let body = with_images(&template, |i| format!("{host}/cold{k}-{i}:1"));
        let blind = Instant::now();
        black_box(review(&body, Mode::Enforce, &policy));
        let blind = blind.elapsed();
        let started = Instant::now();
        let mut source = FromCache(&resolver, false);
        let first = review_with_images(&body, Mode::Enforce, &policy, &mut source);
        let missing = source.1;
        let reviewed = if missing {
            let parsed = serde_json::from_slice::<Value>(&body).unwrap();
            let object = kube_harden::dom::Json::from(&parsed["request"]["object"]);
            let images =
                kube_harden::admission::images_of(&object, kube_harden::harden::WorkloadKind::Pod);
            let resolved = runtime.block_on(resolver.resolve(&images));
            assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
            struct Fixed(Option<(ImageLookup, Vec<String>)>);
            impl ImageSource for Fixed {
                fn lookup(&mut self, _: &[&str]) -> (ImageLookup, Vec<String>) {
                    self.0.take().unwrap_or_default()
                }
            }
            review_with_images(
                &body,
                Mode::Enforce,
                &policy,
                &mut Fixed(Some((resolved.lookup, resolved.warnings))),
            )
        } else {
            first
        };
        black_box(reviewed);
        added.push(started.elapsed().saturating_sub(blind));
    }
    added.sort();
    println!(
        "  {n} cold reviews (1 image each, local registry: index + manifest + config, each after GET /v2/): \
         added p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        percentile(&added, 0.5),
        percentile(&added, 0.9),
        percentile(&added, 0.99),
        added[added.len() - 1]
    );
}
