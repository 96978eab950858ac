//! An image's config blob (JSON, <https://github.com/opencontainers/image-spec/blob/main/config.md>)
//! read into the [`ImageFacts`] the rules use, and the platform an image index is resolved for.
//!
//! Only `config.User`, `config.Volumes` and `config.Env` are read; every other member is skipped
//! without being stored. The blob is already capped in bytes when it gets here
//! ([`super::fetch::MAX_CONFIG_BYTES`]), so parsing it is bounded too.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::harden::ImageFacts;

/// The `os/arch[/variant]` an image index is resolved for: the nodes' platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, `v7`, ...; `None` matches any variant.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    /// `os/arch` or `os/arch/variant`, as `docker --platform` writes it.
    fn from_str(text: &str) -> Result<Self, String> {
        let part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if part(os) && part(arch) => Ok(Self {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            [os, arch, variant] if part(os) && part(arch) && part(variant) => Ok(Self {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: Some((*variant).into()),
            }),
            _ => Err(format!(
                "{text:?} is not a platform: expected os/arch or os/arch/variant (linux/amd64, linux/arm64/v8)"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Whether an image index entry's platform is this one.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (&self.variant, variant) {
                (None, _) => true,
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
            }
    }
}

/// The image configuration, only what is read.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    volumes: Option<BTreeMap<String, IgnoredAny>>,
    #[serde(default)]
    env: Option<Vec<String>>,
}

/// Reads a config blob into facts; `digest` is the platform manifest's. The error says what is
/// wrong with the JSON.
pub fn parse_config(blob: &[u8], digest: &str) -> Result<ImageFacts, String> {
    // serde would read a struct from an array too.
    if blob.trim_ascii_start().first() != Some(&b'{') {
        return Err("the image config is not an OCI image config: not a JSON object".into());
    }
    let file: ConfigFile = serde_json::from_slice(blob)
        .map_err(|e| format!("the image config is not an OCI image config: {e}"))?;
    let config = file.config.unwrap_or(Config {
        user: None,
        volumes: None,
        env: None,
    });
    Ok(ImageFacts {
        user: config.user.filter(|u| !u.is_empty()),
        volumes: config
            .volumes
            .map(|v| v.into_keys().collect())
            .unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        digest: digest.to_owned(),
    })
}

/// Bytes a cached entry holds, for the cache's byte bound.
pub fn weight(facts: &ImageFacts) -> usize {
    let strings = facts.user.as_deref().map_or(0, str::len)
        + facts.digest.len()
        + facts
            .volumes
            .iter()
            .chain(&facts.env)
            .map(String::len)
            .sum::<usize>();
    std::mem::size_of::<ImageFacts>()
        + strings
        + (facts.volumes.len() + facts.env.len()) * std::mem::size_of::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_gives_user_volumes_and_env() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{"User":"1001:1001",
            "Volumes":{"/data":{},"/var/cache/app":{}},"Env":["PATH=/bin","TMPDIR=/scratch"],
            "Cmd":["app"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let facts = parse_config(blob, "sha256:ab").unwrap();
        assert_eq!(facts.user.as_deref(), Some("1001:1001"));
        assert_eq!(facts.volumes, ["/data", "/var/cache/app"]);
        assert_eq!(facts.env, ["PATH=/bin", "TMPDIR=/scratch"]);
        assert_eq!(facts.digest, "sha256:ab");
    }

    #[test]
    fn an_empty_user_and_a_missing_config_are_unset() {
        let facts = parse_config(br#"{"config":{"User":""}}"#, "d").unwrap();
        assert_eq!(facts.user, None);
        let facts = parse_config(br#"{"os":"linux"}"#, "d").unwrap();
        assert_eq!(
            facts,
            ImageFacts {
                digest: "d".into(),
                ..Default::default()
            }
        );
        let facts = parse_config(br#"{"config":null}"#, "d").unwrap();
        assert_eq!(facts.user, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{\"config\":{\"User\":7}}",
            b"\xff\xfe",
            b"",
        ] {
            let err = parse_config(bad, "d").unwrap_err();
            assert!(err.contains("not an OCI image config"), "{err}");
        }
    }

    #[test]
    fn platforms_parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "arm64", None));
        let p: Platform = "linux/amd64".parse().unwrap();
        assert!(p.matches("linux", "amd64", Some("v3")));
        assert!(!p.matches("windows", "amd64", None));
        assert_eq!(Platform::default(), p);
        for bad in ["linux", "linux/", "/amd64", "Linux/amd64", "a/b/c/d", ""] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn weight_grows_with_the_strings() {
        let small = ImageFacts::default();
        let big = ImageFacts {
            env: vec!["X".repeat(1000)],
            ..Default::default()
        };
        assert!(weight(&big) >= weight(&small) + 1000);
    }
}
