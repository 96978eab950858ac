//! kube-harden's OCI image as `scripts/image-build.sh` assembles it without a container engine:
//! built twice from the same binary it is the same archive, byte for byte; its one layer is the
//! distroless-style layout the Dockerfile describes (the static binary, the nonroot user, no
//! shell) and its configuration runs that binary as 65532:65532.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use kube_harden_e2e::incluster::{Image, build};
use kube_harden_e2e::{Result, repo_root};
use serde_json::Value;

/// One entry of a layer: type, owner, mode and (for files) contents.
#[derive(Debug)]
struct Entry {
    kind: tar::EntryType,
    uid: u64,
    gid: u64,
    mode: u32,
    data: Vec<u8>,
}

/// The blobs of an OCI archive, by digest, and its index.
fn read_archive(path: &Path) -> Result<(Value, BTreeMap<String, Vec<u8>>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path)?);
    let mut index = Value::Null;
    let mut blobs = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        if name == "index.json" {
            index = serde_json::from_slice(&data)?;
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let actual = sha256(&data);
            if actual != format!("sha256:{hex}") {
                return Err(format!("blob {name} hashes to {actual}").into());
            }
            blobs.insert(format!("sha256:{hex}"), data);
        }
    }
    Ok((index, blobs))
}

fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn layer_entries(gzipped: &[u8]) -> Result<BTreeMap<String, Entry>> {
    let mut layer = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    let mut entries = BTreeMap::new();
    for entry in layer.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let header = entry.header();
        let (kind, uid, gid, mode) = (
            header.entry_type(),
            header.uid()?,
            header.gid()?,
            header.mode()?,
        );
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        entries.insert(
            name,
            Entry {
                kind,
                uid,
                gid,
                mode,
                data,
            },
        );
    }
    Ok(entries)
}

/// The static binary image-build.sh put in the image (scripts/static-build.sh's output).
fn static_binary(repo: &Path) -> PathBuf {
    let dir = std::env::var_os("STATIC_TARGET_DIR")
        .map(|d| repo.join(d))
        .unwrap_or_else(|| repo.join("target/static"));
    dir.join("x86_64-unknown-linux-gnu/release/kube-harden")
}

/// Builds twice and checks the archive: same bytes, content-addressed blobs, the Dockerfile's
/// configuration and layout, the static binary as built, and nothing else.
pub fn image_is_reproducible_non_root_and_shell_free(first: &Image) -> Result<()> {
    let second = build("kube-harden-second.oci.tar", true, None)?;
    if first.digest != second.digest {
        return Err(format!(
            "two builds, two digests: {} and {}",
            first.digest, second.digest
        )
        .into());
    }
    if std::fs::read(&first.archive)? != std::fs::read(&second.archive)? {
        return Err("two builds with one digest, but the archives differ".into());
    }

    let (index, blobs) = read_archive(&first.archive)?;
    let descriptor = &index["manifests"][0];
    if descriptor["digest"] != first.digest.as_str()
        || descriptor["annotations"]["io.containerd.image.name"] != first.reference.as_str()
    {
        return Err(format!(
            "index.json does not name {} as {}: {index}",
            first.reference, first.digest
        )
        .into());
    }
    let blob = |digest: &Value| {
        digest
            .as_str()
            .and_then(|d| blobs.get(d))
            .ok_or_else(|| format!("blob {digest} missing from the archive"))
    };
    let manifest: Value = serde_json::from_slice(blob(&descriptor["digest"])?)?;
    let config: Value = serde_json::from_slice(blob(&manifest["config"]["digest"])?)?;
    let c = &config["config"];
    let expected = [
        ("User", serde_json::json!("65532:65532")),
        ("Entrypoint", serde_json::json!(["/kube-harden"])),
        ("Cmd", serde_json::json!(["serve"])),
        (
            "ExposedPorts",
            serde_json::json!({"8080/tcp": {}, "8443/tcp": {}}),
        ),
    ];
    for (key, want) in expected {
        if c[key] != want {
            return Err(format!("config {key} is {}, want {want}", c[key]).into());
        }
    }
    if c["Labels"]["org.opencontainers.image.version"] != first.version.as_str() {
        return Err(format!(
            "version label {} (Cargo.toml: {})",
            c["Labels"], first.version
        )
        .into());
    }
    let layers = manifest["layers"].as_array().ok_or("no layers")?;
    if layers.len() != 1 {
        return Err(format!("{} layers, want 1", layers.len()).into());
    }
    let entries = layer_entries(blob(&layers[0]["digest"])?)?;

    // Exactly this layout: path -> (directory?, uid, gid, mode).
    use tar::EntryType::{Directory as D, Regular as F};
    let want = [
        ("etc", D, 0, 0, 0o755),
        ("etc/group", F, 0, 0, 0o644),
        ("etc/nsswitch.conf", F, 0, 0, 0o644),
        ("etc/passwd", F, 0, 0, 0o644),
        ("home", D, 0, 0, 0o755),
        ("home/nonroot", D, 65532, 65532, 0o700),
        ("kube-harden", F, 0, 0, 0o555),
        ("root", D, 0, 0, 0o700),
        ("tmp", D, 0, 0, 0o1777),
    ];
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    let want_names: Vec<&str> = want.iter().map(|w| w.0).collect();
    if names != want_names {
        return Err(format!(
            "layer holds {names:?}, want exactly {want_names:?} (no shell, no package manager)"
        )
        .into());
    }
    for (name, kind, uid, gid, mode) in want {
        let e = &entries[name];
        if e.kind != kind || e.uid != uid || e.gid != gid || e.mode & 0o7777 != mode {
            return Err(format!(
                "{name}: {e:?} (data omitted), want {kind:?} {uid}:{gid} {mode:o}",
                e = (e.kind, e.uid, e.gid, e.mode)
            )
            .into());
        }
    }
    let passwd = String::from_utf8_lossy(&entries["etc/passwd"].data);
    if !passwd
        .lines()
        .any(|l| l.starts_with("nonroot:x:65532:65532:"))
    {
        return Err(format!("/etc/passwd has no nonroot 65532 entry:\n{passwd}").into());
    }
    let repo = repo_root();
    let binary = std::fs::read(static_binary(&repo))?;
    if entries["kube-harden"].data != binary {
        return Err("/kube-harden is not the static binary scripts/static-build.sh built".into());
    }
    // The binary must not depend on where it was built (static-build.sh remaps the paths).
    let checkout = repo.to_string_lossy().into_owned();
    if binary
        .windows(checkout.len())
        .any(|w| w == checkout.as_bytes())
    {
        return Err(format!("the binary embeds the checkout's path {checkout}").into());
    }
    eprintln!(
        "image: {} {} ({} bytes archive, {} bytes binary), identical over two builds",
        first.reference,
        first.digest,
        std::fs::metadata(&first.archive)?.len(),
        binary.len()
    );
    Ok(())
}
