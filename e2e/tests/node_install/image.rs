//! kube-harden's OCI image as `scripts/image-build.sh` assembles it without a container engine:
//! built twice from the same binary it is the same archive, byte for byte; its one layer is the
//! distroless-style layout the Dockerfile describes (the static binary, the nonroot user, no
//! shell) and its configuration runs that binary as 65532:65532.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube_harden_e2e::{Result, process, repo_root, target_dir};
use serde_json::Value;

/// A built archive and what the script printed about it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The OCI archive (`ctr images import` takes it).
    pub archive: PathBuf,
    /// The manifest digest the script printed (`sha256:...`).
    pub digest: String,
    /// The image reference (`kube-harden.local/kube-harden:<version>`).
    pub reference: String,
    /// Cargo.toml's version: the tag and the version label.
    pub version: String,
}

/// kube-harden's version, from the workspace's Cargo.toml (what the script tags with).
pub fn cargo_version(repo: &Path) -> Result<String> {
    let toml = std::fs::read_to_string(repo.join("Cargo.toml"))?;
    toml.lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| "no version in Cargo.toml".into())
}

/// Runs `scripts/image-build.sh` (which builds the static release binary when it is stale:
/// minutes, once) writing `file` under target/image-test/; `version`: another version than
/// Cargo.toml's (the script builds that binary in a target directory of its own).
pub fn build(file: &str, no_build: bool, version: Option<&str>) -> Result<Image> {
    let repo = repo_root();
    let archive = target_dir(&repo).join("image-test").join(file);
    let mut cmd = Command::new(repo.join("scripts/image-build.sh"));
    if no_build {
        cmd.arg("--no-build");
    }
    cmd.arg("-o").arg(&archive).current_dir(&repo);
    // Not the environment `cargo test` gives this process (CARGO_PKG_*, LD_LIBRARY_PATH, ...):
    // with it the release build's fingerprints differ from a shell's, and each side rebuilds
    // kube-harden's dependencies after the other (minutes of LTO each time).
    cmd.env_clear();
    for key in [
        "PATH",
        "HOME",
        "TMPDIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "STATIC_TARGET_DIR",
    ] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    if let Some(version) = version {
        cmd.env("VERSION", version).env_remove("STATIC_TARGET_DIR");
    }
    let out = process::run(&mut cmd, None, Duration::from_secs(60 * 60))?.ok("image-build.sh")?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let [path, digest] = lines[..] else {
        return Err(format!(
            "image-build.sh printed {:?}, not a path and a digest",
            out.stdout
        )
        .into());
    };
    if Path::new(path) != archive {
        return Err(format!(
            "image-build.sh wrote {path}, asked for {}",
            archive.display()
        )
        .into());
    }
    let version = match version {
        Some(v) => v.to_owned(),
        None => cargo_version(&repo)?,
    };
    Ok(Image {
        archive,
        digest: digest.to_owned(),
        reference: format!("kube-harden.local/kube-harden:{version}"),
        version,
    })
}

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
