//! Findings: the risks the rules leave standing that Pod Security does not report, because
//! only the author can fix them (a missing probe, an unpinned image, a writable root the author
//! asked for, a data directory the app cannot own). Evaluated on the hardened pod spec, so they
//! say what remains after kube-harden did its part.
//!
//! What the `restricted` Pod Security Standard forbids (host namespaces, privileged, hostPath,
//! host ports, root, seccomp, privilege escalation, added capabilities...) is not a finding: the
//! PSA check of the same hardened spec (`crate::psa`, [`super::Hardened::restricted`]) reports
//! it, so each violation is warned about once.
//!
//! Each finding has a stable name (used in warnings, metrics and `kube-harden harden
//! --findings`), the container it concerns, and a one-line reason. docs/findings.md explains each
//! one and how to fix it by hand. The checks follow
//! <https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/>.

use std::fmt;

use crate::dom::Json;
use serde::Serialize;

use super::WorkloadKind;
use crate::harden::json;
use crate::psa::{Container, PodSpec};

macro_rules! finding_names {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A stable finding name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum FindingName {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl FindingName {
            /// Every finding name.
            pub const ALL: &'static [FindingName] = &[$(FindingName::$variant,)*];

            /// The stable name, as in metrics and output.
            pub fn as_str(self) -> &'static str {
                match self { $(FindingName::$variant => $name,)* }
            }
        }
    };
}

finding_names! {
    /// A long-running container without a liveness probe.
    NoLivenessProbe => "noLivenessProbe",
    /// A long-running container without a readiness probe.
    NoReadinessProbe => "noReadinessProbe",
    /// `readOnlyRootFilesystem: false` written explicitly.
    WritableRootFilesystem => "writableRootFilesystem",
    /// An image without a tag or digest, or tagged `latest`.
    ImageLatest => "imageLatest",
    /// A data directory the app must own (PostgreSQL's `PGDATA`) is a volume's mount point, in
    /// a container that runs as a set non-root UID.
    DataDirIsMountPoint => "dataDirIsMountPoint",
}

impl fmt::Display for FindingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One risk left standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which finding.
    pub name: FindingName,
    /// The container it concerns (every finding is a container's; `None` is kept for a pod-level
    /// one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// One line: why it matters here.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(c) = &self.container {
            write!(f, " (container {c})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A `securityContext`, if it is an object.
fn sc_of<'a>(sc: Option<&'a Json<'a>>) -> Option<&'a Json<'a>> {
    sc.filter(|s| s.is_object())
}

/// The findings of a (hardened) pod spec. `kind` decides whether probes are expected: Jobs and
/// CronJobs run to completion and need none.
pub fn find(spec: &PodSpec<'_>, kind: WorkloadKind) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |name: FindingName, c: &Container<'_>, reason: String| {
        out.push(Finding {
            name,
            container: Some(container_name(c)),
            reason,
        });
    };
    let pod_sc = sc_of(spec.security_context);
    // First: the one finding that says the app will not start, so the cap on finding warnings
    // never hides it.
    for c in &spec.containers {
        if let Some(reason) = data_dir_is_mount_point(c, pod_sc) {
            push(FindingName::DataDirIsMountPoint, c, reason);
        }
    }

    let long_running = !matches!(kind, WorkloadKind::Job | WorkloadKind::CronJob);
    for c in &spec.containers {
        let list = c.list;
        let sidecar = list == "initContainers"
            && json::member(c, "restartPolicy").and_then(Json::as_str) == Some("Always");
        if long_running && (list == "containers" || sidecar) {
            for (probe, finding, why) in [
                (
                    "livenessProbe",
                    FindingName::NoLivenessProbe,
                    "a hung process is never restarted",
                ),
                (
                    "readinessProbe",
                    FindingName::NoReadinessProbe,
                    "traffic reaches it before it can serve",
                ),
            ] {
                if json::member(c, probe).is_none_or(Json::is_null) {
                    push(finding, c, format!("no {probe}: {why}"));
                }
            }
        }
        if sc_of(c.security_context)
            .and_then(|s| json::member(s, "readOnlyRootFilesystem"))
            .and_then(Json::as_bool)
            == Some(false)
        {
            push(
                FindingName::WritableRootFilesystem,
                c,
                "readOnlyRootFilesystem is false: an intruder can change the image's files".into(),
            );
        }
        if let Some(image) = json::member(c, "image").and_then(Json::as_str)
            && unpinned_image(image)
        {
            push(
                FindingName::ImageLatest,
                c,
                format!("image {image} has no tag or is :latest: what runs can change under you"),
            );
        }
    }
    out
}

/// PostgreSQL's data directory: the variable, and its default in the official image (and the
/// Debian-based images built like it).
const PGDATA: &str = "PGDATA";
const PGDATA_DEFAULT: &str = "/var/lib/postgresql/data";

/// Why container `c` cannot initialise its data directory, if that is the case: `PGDATA` (as
/// set in `env`, else its default when `env` and `envFrom` cannot set it) is the mount point of a
/// volume, and the container runs as a non-root UID of the pod spec. initdb must own and `chmod`
/// the directory, and a volume's root belongs to root (`chmod: changing permissions of
/// '/var/lib/postgresql/data': Operation not permitted`); a subdirectory it creates is its own.
fn data_dir_is_mount_point(c: &Container<'_>, pod_sc: Option<&Json<'_>>) -> Option<String> {
    let uid = sc_of(c.security_context)
        .and_then(|s| json::member(s, "runAsUser"))
        .and_then(Json::as_i64)
        .or_else(|| {
            pod_sc
                .and_then(|s| json::member(s, "runAsUser"))
                .and_then(Json::as_i64)
        })
        .filter(|uid| *uid != 0)?;
    let entry = c
        .env()
        .find(|e| json::member(e, "name").and_then(Json::as_str) == Some(PGDATA));
    let data_dir = match entry {
        // `valueFrom`: the value is not known here.
        Some(entry) => json::member(entry, "value").and_then(Json::as_str)?,
        None if json::member(c, "envFrom").is_some_and(|e| !e.is_null()) => return None,
        None => PGDATA_DEFAULT,
    };
    let data_dir = data_dir.trim_end_matches('/');
    let mounted = c
        .volume_mounts()
        .filter_map(|m| json::member(m, "mountPath").and_then(Json::as_str))
        .any(|p| !data_dir.is_empty() && p.trim_end_matches('/') == data_dir);
    mounted.then(|| {
        format!(
            "{PGDATA} {data_dir} is a volume's mount point: as UID {uid} initdb cannot chmod it; \
             set {PGDATA}={data_dir}/pgdata (a subdirectory)"
        )
    })
}

/// A container's name as findings quote it.
fn container_name(c: &Json<'_>) -> String {
    super::budget::short_name(
        json::member(c, "name")
            .and_then(Json::as_str)
            .unwrap_or("?"),
    )
}

/// No tag and no digest, or the tag `latest`. A registry port (`host:5000/app`) is not a tag.
fn unpinned_image(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => true,
        Some((_, tag)) => tag == "latest",
    }
}

#[cfg(test)]
mod tests;
