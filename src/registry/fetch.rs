//! One image's facts from its registry with `oci-client`: the manifest (an index resolved to the
//! configured platform's manifest), then the config blob, each digest-verified and size-capped.
//!
//! What `oci-client` checks: a manifest fetched by digest hashes to that digest; a blob streamed
//! to its end hashes to its descriptor's digest. What this module adds: the index entry for the
//! platform, size caps before a fetch (from the descriptors) and while streaming the config
//! (at most [`MAX_CONFIG_BYTES`] are read), and a classification of every failure into a bounded
//! [`Reason`]. `oci-client` reads a manifest response whole: the top-level manifest (by tag) is
//! bounded by the fetch's time limit only, and checked against [`MAX_MANIFEST_BYTES`] after.

use futures_util::StreamExt;
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::facts::{Platform, parse_config};
use crate::harden::ImageFacts;

/// Most bytes of a config blob read (real configs are 1-20 KiB).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Most bytes of a manifest or index accepted (the distribution registry's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The manifest media types asked for.
const ACCEPT: &[&str] = &[
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Why an image's facts could not be read: the `reason` label of the error metric (a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The image reference does not parse.
    InvalidReference,
    /// The registry could not be reached (DNS, connection refused, TLS).
    Unreachable,
    /// The fetch did not finish within the budget.
    Timeout,
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404: no such repository, tag, manifest or blob.
    NotFound,
    /// 429.
    RateLimited,
    /// Any other HTTP error status.
    HttpError,
    /// Too many redirects, or a redirect status answered to a client that does not follow it.
    Redirect,
    /// Content does not hash to its digest.
    DigestMismatch,
    /// A manifest or config larger than its cap.
    TooBig,
    /// A manifest or config that cannot be read.
    BadContent,
    /// An image index without the configured platform.
    NoPlatform,
    /// Too many different images being fetched at once.
    Busy,
    /// Another transport failure.
    Transport,
}

impl Reason {
    /// Every reason, for tests and docs.
    pub const ALL: [Reason; 15] = [
        Reason::InvalidReference,
        Reason::Unreachable,
        Reason::Timeout,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::RateLimited,
        Reason::HttpError,
        Reason::Redirect,
        Reason::DigestMismatch,
        Reason::TooBig,
        Reason::BadContent,
        Reason::NoPlatform,
        Reason::Busy,
        Reason::Transport,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidReference => "invalid_reference",
            Reason::Unreachable => "unreachable",
            Reason::Timeout => "timeout",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::RateLimited => "rate_limited",
            Reason::HttpError => "http_error",
            Reason::Redirect => "redirect",
            Reason::DigestMismatch => "digest_mismatch",
            Reason::TooBig => "too_big",
            Reason::BadContent => "bad_content",
            Reason::NoPlatform => "no_platform",
            Reason::Busy => "busy",
            Reason::Transport => "transport",
        }
    }
}

/// A failed fetch: the reason label and a message for the warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// The bounded reason.
    pub reason: Reason,
    /// What happened, at most [`MAX_MESSAGE`] characters (registries' error bodies are echoed).
    pub message: String,
}

/// Longest message kept from a registry's answer.
const MAX_MESSAGE: usize = 120;

impl FetchError {
    /// An error with its message cut to [`MAX_MESSAGE`] characters.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE) {
            message.truncate(cut);
            message.push_str("...");
        }
        Self { reason, message }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.as_str())
    }
}

impl From<OciDistributionError> for FetchError {
    fn from(e: OciDistributionError) -> Self {
        let reason =
            match &e {
                OciDistributionError::AuthenticationFailure(_)
                | OciDistributionError::UnauthorizedError { .. } => Reason::Unauthorized,
                OciDistributionError::DigestError(_) => Reason::DigestMismatch,
                OciDistributionError::RegistryError { envelope, .. } => envelope
                    .errors
                    .first()
                    .map_or(Reason::HttpError, |err| match err.code {
                        OciErrorCode::Unauthorized => Reason::Unauthorized,
                        OciErrorCode::Denied => Reason::Forbidden,
                        OciErrorCode::Toomanyrequests => Reason::RateLimited,
                        OciErrorCode::BlobUnknown
                        | OciErrorCode::ManifestUnknown
                        | OciErrorCode::ManifestBlobUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound => Reason::NotFound,
                        _ => Reason::HttpError,
                    }),
                OciDistributionError::ServerError { code, .. } => match code {
                    401 => Reason::Unauthorized,
                    403 => Reason::Forbidden,
                    404 => Reason::NotFound,
                    429 => Reason::RateLimited,
                    300..=399 => Reason::Redirect,
                    _ => Reason::HttpError,
                },
                // reqwest's error, as oci-client wraps it.
                OciDistributionError::RequestError(e) if e.is_redirect() => Reason::Redirect,
                OciDistributionError::RequestError(e) if e.is_timeout() => Reason::Timeout,
                OciDistributionError::RequestError(e) if e.is_connect() => Reason::Unreachable,
                OciDistributionError::IoError(e) => io_reason(e),
                OciDistributionError::ManifestParsingError(_)
                | OciDistributionError::VersionedParsingError(_)
                | OciDistributionError::UnsupportedMediaTypeError(_)
                | OciDistributionError::UnsupportedSchemaVersionError(_)
                | OciDistributionError::JsonError(_)
                | OciDistributionError::ManifestEncodingError(_)
                | OciDistributionError::SpecViolationError(_) => Reason::BadContent,
                OciDistributionError::UrlParseError(_) => Reason::InvalidReference,
                _ => Reason::Transport,
            };
        FetchError::new(reason, e.to_string())
    }
}

/// The blob stream reports a digest mismatch as an I/O error wrapping a [`DigestError`].
fn io_reason(e: &std::io::Error) -> Reason {
    if e.get_ref().is_some_and(|inner| inner.is::<DigestError>()) {
        Reason::DigestMismatch
    } else {
        Reason::Transport
    }
}

/// Reads the facts of `reference` for `platform`; also returns the digest the reference
/// resolved to (the index's, or the manifest's when there is no index).
pub async fn fetch(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
    platform: &Platform,
) -> Result<(String, ImageFacts), FetchError> {
    let (body, digest) = client.pull_manifest_raw(reference, auth, ACCEPT).await?;
    let top = digest.clone();
    let manifest = parse_manifest(&body)?;
    let (manifest, digest) = match manifest {
        OciManifest::Image(image) => (image, digest),
        OciManifest::ImageIndex(index) => {
            let entry = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        platform.matches(
                            &p.os.to_string(),
                            &p.architecture.to_string(),
                            p.variant.as_deref(),
                        )
                    })
                })
                .ok_or_else(|| {
                    let listed: Vec<String> = index
                        .manifests
                        .iter()
                        .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                        .collect();
                    FetchError::new(
                        Reason::NoPlatform,
                        format!(
                            "the image index has no {platform} manifest (it lists: {})",
                            listed.join(", ")
                        ),
                    )
                })?;
            check_size("platform manifest", entry.size, MAX_MANIFEST_BYTES)?;
            let by_digest = reference.clone_with_digest(entry.digest.clone());
            let (body, digest) = client.pull_manifest_raw(&by_digest, auth, ACCEPT).await?;
            match parse_manifest(&body)? {
                OciManifest::Image(image) => (image, digest),
                OciManifest::ImageIndex(_) => {
                    return Err(FetchError::new(
                        Reason::BadContent,
                        format!("the index entry for {platform} is another index"),
                    ));
                }
            }
        }
    };
    let blob = read_config(client, reference, &manifest.config).await?;
    let facts = parse_config(&blob, &digest).map_err(|e| FetchError::new(Reason::BadContent, e))?;
    Ok((top, facts))
}

/// The digest a tag points to now (a HEAD request), to check a cached answer.
pub async fn head(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<String, FetchError> {
    Ok(client.fetch_manifest_digest(reference, auth).await?)
}

fn parse_manifest(body: &[u8]) -> Result<OciManifest, FetchError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(FetchError::new(
            Reason::TooBig,
            format!(
                "manifest of {} bytes, more than the limit of {MAX_MANIFEST_BYTES}",
                body.len()
            ),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| FetchError::new(Reason::BadContent, format!("not an OCI manifest: {e}")))
}

fn check_size(what: &str, size: i64, limit: usize) -> Result<(), FetchError> {
    match usize::try_from(size) {
        Ok(size) if size <= limit => Ok(()),
        _ => Err(FetchError::new(
            Reason::TooBig,
            format!("{what} of {size} bytes, more than the limit of {limit}"),
        )),
    }
}

/// The config blob, at most [`MAX_CONFIG_BYTES`] of it, digest-verified by `oci-client`'s
/// stream when read to its end.
async fn read_config(
    client: &Client,
    reference: &Reference,
    config: &OciDescriptor,
) -> Result<Vec<u8>, FetchError> {
    check_size("config", config.size, MAX_CONFIG_BYTES)?;
    let mut stream = client.pull_blob_stream(reference, config).await?;
    let too_big = || {
        FetchError::new(
            Reason::TooBig,
            format!("config of more than {MAX_CONFIG_BYTES} bytes (read stopped there)"),
        )
    };
    if stream
        .content_length
        .is_some_and(|n| n > MAX_CONFIG_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut blob = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::new(io_reason(&e), e.to_string()))?;
        if blob.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(too_big());
        }
        blob.extend_from_slice(&chunk);
    }
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_labels() {
        let labels: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
    }

    #[test]
    fn messages_are_cut() {
        let e = FetchError::new(Reason::HttpError, "é".repeat(10_000));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE + 3);
    }

    #[test]
    fn registry_errors_map_to_reasons() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        };
        for (code, reason) in [
            (401, Reason::Unauthorized),
            (403, Reason::Forbidden),
            (404, Reason::NotFound),
            (429, Reason::RateLimited),
            (307, Reason::Redirect),
            (500, Reason::HttpError),
        ] {
            assert_eq!(FetchError::from(server(code)).reason, reason, "{code}");
        }
        let envelope: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"DENIED","message":"no"}]}"#).unwrap();
        let e = OciDistributionError::RegistryError {
            envelope,
            url: "u".into(),
        };
        assert_eq!(FetchError::from(e).reason, Reason::Forbidden);
    }

    #[test]
    fn manifests_are_capped_and_checked() {
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(parse_manifest(&big).unwrap_err().reason, Reason::TooBig);
        assert_eq!(
            parse_manifest(b"{}").unwrap_err().reason,
            Reason::BadContent
        );
        assert_eq!(check_size("x", -1, 10).unwrap_err().reason, Reason::TooBig);
        assert!(check_size("x", 10, 10).is_ok());
    }
}
