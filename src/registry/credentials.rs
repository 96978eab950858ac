//! Registry credentials from a docker `config.json`: `serve` reads the one mounted from a Secret
//! in kube-harden's own namespace (`--registry-credentials`), `harden` and `scan` the user's
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
//!
//! Only the `auths` map is read (`auth`: base64 of `user:password`, or `username` and
//! `password`; `identitytoken` and `registrytoken` as bearer tokens). Credential helpers
//! (`credsStore`, `credHelpers`) are not run: a webhook must not start processes named by a
//! file, and the offline command uses the same reader so both behave alike.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// A `config.json` larger than this is refused (real ones are a few KiB).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Credentials per registry host (`host[:port]`, Docker Hub as `index.docker.io`).
#[derive(Default, Clone)]
pub struct Credentials {
    by_host: HashMap<String, RegistryAuth>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hosts only: never the secrets.
        let mut hosts: Vec<&String> = self.by_host.keys().collect();
        hosts.sort();
        f.debug_struct("Credentials")
            .field("hosts", &hosts)
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl Credentials {
    /// Reads a docker `config.json`. The error names the file and what is wrong (never a secret).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("registry credentials {shown}: {e}"))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "registry credentials {shown}: {size} bytes, more than the limit of {MAX_FILE_BYTES}"
            ));
        }
        let text = std::fs::read(path).map_err(|e| format!("registry credentials {shown}: {e}"))?;
        Self::from_json(&text).map_err(|e| format!("registry credentials {shown}: {e}"))
    }

    /// The user's docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`);
    /// none when the file does not exist.
    pub fn from_docker_config() -> Result<Self, String> {
        match default_path().filter(|p| p.exists()) {
            Some(path) => Self::from_file(&path),
            None => Ok(Self::default()),
        }
    }

    /// Parses a docker `config.json`.
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let file: ConfigFile =
            serde_json::from_slice(text).map_err(|e| format!("not a docker config.json: {e}"))?;
        let mut by_host = HashMap::new();
        for (key, entry) in file.auths {
            let host = normalize_host(&key);
            let auth = entry
                .to_auth()
                .map_err(|e| format!("auths[{key:?}]: {e}"))?;
            if let Some(auth) = auth {
                by_host.insert(host, auth);
            }
        }
        Ok(Self { by_host })
    }

    /// The credentials for a registry host as [`oci_client::Reference::resolve_registry`]
    /// names it; anonymous when there are none.
    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        self.by_host
            .get(&normalize_host(registry))
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Number of registries with credentials.
    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    /// No credentials at all.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

impl AuthEntry {
    fn to_auth(&self) -> Result<Option<RegistryAuth>, String> {
        if let Some(token) = self.registrytoken.as_ref().or(self.identitytoken.as_ref()) {
            return Ok(Some(RegistryAuth::Bearer(token.clone())));
        }
        if let Some(encoded) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = BASE64_STANDARD
                .decode(encoded.trim())
                .map_err(|_| "auth is not base64".to_owned())?;
            let decoded = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8".to_owned())?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| "auth is not base64 of user:password".to_owned())?;
            return Ok(Some(RegistryAuth::Basic(user.into(), password.into())));
        }
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => {
                Ok(Some(RegistryAuth::Basic(user.clone(), password.clone())))
            }
            _ => Ok(None),
        }
    }
}

/// `https://index.docker.io/v1/`, `docker.io`, `registry-1.docker.io` -> `index.docker.io`;
/// `http://host:5000/path` -> `host:5000`.
fn normalize_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> (String, String) {
        match auth {
            RegistryAuth::Basic(u, p) => (u, p),
            other => panic!("not basic: {other:?}"),
        }
    }

    #[test]
    fn reads_every_docker_form() {
        let creds = Credentials::from_json(
            br#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "127.0.0.1:5000":{"username":"kh","password":"secret"},
                "http://Registry.Example:8443/v2/":{"identitytoken":"tok"},
                "empty.example":{}
            },"credsStore":"desktop"}"#,
        )
        .unwrap();
        assert_eq!(creds.len(), 3);
        assert_eq!(
            basic(creds.for_registry("index.docker.io")),
            ("user".into(), "pa:ss".into())
        );
        assert_eq!(basic(creds.for_registry("docker.io")).0, "user");
        assert_eq!(
            basic(creds.for_registry("127.0.0.1:5000")),
            ("kh".into(), "secret".into())
        );
        assert!(matches!(
            creds.for_registry("registry.example:8443"),
            RegistryAuth::Bearer(t) if t == "tok"
        ));
        assert!(matches!(
            creds.for_registry("empty.example"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            creds.for_registry("other:1"),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn bad_files_are_clear_errors_without_secrets() {
        for (text, want) in [
            (&b"{"[..], "not a docker config.json"),
            (br#"{"auths":{"h":{"auth":"%%%"}}}"#, "auth is not base64"),
            (
                br#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#,
                "user:password",
            ),
            (br#"{"auths":[]}"#, "not a docker config.json"),
        ] {
            let err = Credentials::from_json(text).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let creds = Credentials::from_json(br#"{"auths":{"h":{"auth":"dTpzZWNyZXQ="}}}"#).unwrap();
        assert!(!format!("{creds:?}").contains("secret"));
    }

    #[test]
    fn files_are_read_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            br#"{"auths":{"h:1":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        assert_eq!(Credentials::from_file(&path).unwrap().len(), 1);
        std::fs::write(&path, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        let err = Credentials::from_file(&path).unwrap_err();
        assert!(err.contains("more than the limit"), "{err}");
        let err = Credentials::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
