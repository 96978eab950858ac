//! `--resolve-images` against a real OCI registry (Distribution v3 on 127.0.0.1, src/registry.rs):
//! an image pushed with crane is read back (index -> linux/amd64 manifest -> config) by tag and
//! by digest; with htpasswd auth, an anonymous client falls back with `unauthorized` and the
//! registry's docker config.json reads it; an unknown tag falls back with `not_found`. Timings
//! are printed (`cargo test -p kube-harden-e2e --test images -- --nocapture`).

use std::path::Path;
use std::time::{Duration, Instant};

use kube_harden::metrics::RegistryMetrics;
use kube_harden::registry::{Credentials, Resolver, Settings};
use kube_harden_e2e::registry::{Options, Registry, sha256_digest as sha256};
use serde_json::json;

/// Writes an OCI image layout of a multi-platform image (an index of linux/amd64 and
/// linux/arm64) whose amd64 config says USER 10001:10001, VOLUME /data, TMPDIR=/scratch.
fn write_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let digest = sha256(data);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), data).unwrap();
        (digest, data.len())
    };
    // An empty tar: two 512-byte zero blocks.
    let (layer, layer_size) = put(&[0u8; 1024]);
    let mut manifests = Vec::new();
    for (arch, user) in [("amd64", "10001:10001"), ("arm64", "20002")] {
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "config": {"User": user, "Volumes": {"/data": {}},
                       "Env": ["PATH=/usr/bin:/bin", "TMPDIR=/scratch"]},
            "rootfs": {"type": "layers", "diff_ids": [layer]}
        }))
        .unwrap();
        let (config, config_size) = put(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer, "size": layer_size}]
        }))
        .unwrap();
        let (digest, size) = put(&manifest);
        manifests.push(
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": digest, "size": size,
                              "platform": {"os": "linux", "architecture": arch}}),
        );
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    // The layout's index.json is the image index crane pushes (`--index`).
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests
        }))
        .unwrap(),
    )
    .unwrap();
}

fn resolver(registry: &Registry, credentials: Credentials) -> Resolver {
    let settings = Settings {
        budget: Duration::from_secs(2),
        insecure: vec![registry.host()],
        credentials,
        ..Settings::default()
    };
    Resolver::new(settings, RegistryMetrics::throwaway()).unwrap()
}

fn start(dir: &Path, auth: bool) -> Registry {
    let registry = Registry::start(
        &dir.join("registry"),
        Options {
            auth,
            ..Options::default()
        },
    )
    .unwrap();
    let layout = dir.join("layout");
    write_layout(&layout);
    // crane pushes every manifest the layout's index.json names: the multi-platform index.
    registry
        .crane(&[
            "push",
            "--index",
            layout.to_str().unwrap(),
            &registry.reference("vendor/app:1"),
        ])
        .unwrap();
    registry
}

#[tokio::test]
async fn a_real_registry_gives_the_platform_config_by_tag_and_by_digest() {
    let dir = tempfile_dir("anonymous");
    let registry = start(&dir, false);
    let resolver = resolver(&registry, Credentials::default());
    let image = registry.reference("vendor/app:1");
    let started = Instant::now();
    let resolved = resolver.resolve(std::slice::from_ref(&image)).await;
    println!("real registry, cold, by tag: {:?}", started.elapsed());
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let facts = &resolved.lookup[&image];
    assert_eq!(
        facts.user.as_deref(),
        Some("10001:10001"),
        "the amd64 config"
    );
    assert_eq!(facts.volumes, ["/data"]);
    assert!(facts.env.iter().any(|e| e == "TMPDIR=/scratch"));
    // By the platform manifest's digest: the same facts, fetched without the index.
    let by_digest = format!("{}/vendor/app@{}", registry.host(), facts.digest);
    let started = Instant::now();
    let again = resolver.resolve(std::slice::from_ref(&by_digest)).await;
    println!("real registry, cold, by digest: {:?}", started.elapsed());
    assert_eq!(
        again.lookup[&by_digest].user.as_deref(),
        Some("10001:10001")
    );
    // Unknown tag: 404.
    let missing = registry.reference("vendor/app:nope");
    let resolved = resolver.resolve(std::slice::from_ref(&missing)).await;
    assert!(resolved.lookup.is_empty());
    assert!(
        resolved.warnings[0].contains(&missing) && resolved.warnings[0].contains("(not_found)"),
        "{:?}",
        resolved.warnings
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_registry_with_auth_needs_the_credentials() {
    let dir = tempfile_dir("auth");
    let registry = start(&dir, true);
    let image = registry.reference("vendor/app:1");
    let anonymous = resolver(&registry, Credentials::default());
    let resolved = anonymous.resolve(std::slice::from_ref(&image)).await;
    assert!(resolved.lookup.is_empty());
    assert!(
        resolved.warnings[0].contains("(unauthorized)"),
        "{:?}",
        resolved.warnings
    );
    let credentials =
        Credentials::from_file(&registry.docker_config_dir().join("config.json")).unwrap();
    let with_credentials = resolver(&registry, credentials);
    let resolved = with_credentials.resolve(std::slice::from_ref(&image)).await;
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    assert_eq!(resolved.lookup[&image].user.as_deref(), Some("10001:10001"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kube-harden-e2e-images-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
