//! The legacy apps (images from e2e/images/), each with the manifest a platform team meets it
//! with (no securityContext), the readiness check that proves it works, the fix kube-harden's
//! output and docs point to, and the outcome the suite expects when it is hardened without it.

use std::net::IpAddr;
use std::sync::OnceLock;

use kube_harden_e2e::Result;
use serde_json::{Value, json};

use super::checks;

/// How an app is run.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A Deployment with one replica, checked over the network.
    Server {
        /// The container port the check connects to.
        port: u16,
        /// The check: evidence for the report, or an error.
        check: fn(IpAddr, u16) -> Result<String>,
    },
    /// A CronJob, run once with `kubectl create job --from=cronjob/...`; it must complete and
    /// print `expect`.
    CronJob {
        /// A line the job's log must contain.
        expect: &'static str,
    },
}

/// One legacy app.
#[derive(Debug, Clone)]
pub struct App {
    /// The image's directory under e2e/images/ and the workload's name.
    pub name: &'static str,
    /// What the image is, for the report.
    pub what: &'static str,
    /// How it runs and how it is checked.
    pub kind: Kind,
    /// Extra volumes and mounts the legacy manifest has (e.g. a data volume).
    pub data_volume: Option<&'static str>,
    /// The annotations the fix adds to the pod template.
    pub fix: &'static [(&'static str, &'static str)],
    /// Environment variables the fix sets on the container (beyond what kube-harden can say).
    pub fix_env: &'static [(&'static str, &'static str)],
    /// Whether it keeps running when hardened with no annotation.
    pub runs_hardened_as_is: bool,
    /// Whether it keeps running when hardened with no annotation by the image-aware webhook
    /// (`--resolve-images`).
    pub runs_image_aware: bool,
    /// The UID its image's numeric `USER` names: the image-aware pod must run as it.
    pub image_uid: Option<i64>,
    /// The image-aware change names kube-harden's warnings must list for it (what the image
    /// told it: `imageUser`, `imageVolumes`, `imageTmpdir`).
    pub image_changes: &'static [&'static str],
    /// The `VOLUME` its image declares that the image-aware pod must have an emptyDir at.
    pub image_volume: Option<&'static str>,
}

/// The registry the node pulls the zoo from (`127.0.0.1:<port>`), set once it runs.
static REGISTRY: OnceLock<String> = OnceLock::new();

/// Records the registry the zoo was pushed to (the first call wins: one per run).
pub fn set_registry(host: &str) {
    let _ = REGISTRY.set(host.to_owned());
}

/// An app's repository and tag in the registry (build.sh names it
/// `kube-harden.local/legacy/<app>:1` in its archive).
pub fn repository(app: &str) -> String {
    format!("legacy/{app}:1")
}

/// The image reference the pods use: the app in the suite's registry (a name no registry
/// answers to before [`set_registry`], so a pod made too early fails to pull, visibly).
pub fn image(app: &str) -> String {
    let host = REGISTRY
        .get()
        .map_or("registry-not-started.invalid", String::as_str);
    format!("{host}/{}", repository(app))
}

fn nginx(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "Welcome to nginx!")
}
fn python_web(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "wrote and read a temp file in /tmp")
}
fn vendor(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "vendor app 4.2.1")
}
fn named(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "named-user app")
}
fn volume(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "volume app uid=")
}
fn jvm(ip: IpAddr, port: u16) -> Result<String> {
    checks::http(ip, port, "jvm app java=17")
}

/// The writable-paths annotation.
pub const WRITABLE: &str = "kube-harden.io/writable-paths";
const SKIP: &str = "kube-harden.io/skip";

/// The zoo, in report order.
pub fn all() -> Vec<App> {
    vec![
        App {
            name: "nginx",
            what: "Debian's nginx: master as root, port 80, pid in /run, logs in /var/log/nginx, \
                   bodies in /var/lib/nginx",
            kind: Kind::Server {
                port: 80,
                check: nginx,
            },
            data_volume: None,
            fix: &[(WRITABLE, "/var/lib/nginx,/var/log/nginx,/run")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "redis",
            what: "Debian's redis-server with /etc/redis/redis.conf (0640 redis:redis), USER redis",
            kind: Kind::Server {
                port: 6379,
                check: checks::redis,
            },
            data_volume: None,
            fix: &[
                (SKIP, "runAsUser,runAsGroup"),
                (WRITABLE, "/var/log/redis,/var/lib/redis,/run/redis"),
            ],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "postgres",
            what: "Debian's PostgreSQL 15, official-image-style entrypoint (initdb on first \
                   start), data volume at /var/lib/postgresql/data",
            kind: Kind::Server {
                port: 5432,
                check: checks::postgres,
            },
            data_volume: Some("/var/lib/postgresql/data"),
            fix: &[(WRITABLE, "/run/postgresql")],
            fix_env: &[("PGDATA", "/var/lib/postgresql/data/pgdata")],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "python-web",
            what: "Python http.server app writing a temp file per request (tempfile), as root",
            kind: Kind::Server {
                port: 8080,
                check: python_web,
            },
            data_volume: None,
            fix: &[],
            fix_env: &[],
            runs_hardened_as_is: true,
            runs_image_aware: true,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "cronjob",
            what: "shell CronJob appending to /var/log/legacy-job/job.log, as root",
            kind: Kind::CronJob {
                expect: "legacy-job ran as uid",
            },
            data_volume: None,
            fix: &[(WRITABLE, "/var/log/legacy-job")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "vendor-uid",
            what: "vendor-style image: USER 10001 owns /opt/vendor, mode 0700",
            kind: Kind::Server {
                port: 8080,
                check: vendor,
            },
            data_volume: None,
            fix: &[(SKIP, "runAsUser,runAsGroup")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: true,
            image_uid: Some(10001),
            image_changes: &["imageUser"],
            image_volume: None,
        },
        App {
            name: "volume-data",
            what: "USER 10002:10002, writes its data to its image's VOLUME /var/lib/volume-app \
                   (owned by that user, mode 0700)",
            kind: Kind::Server {
                port: 8080,
                check: volume,
            },
            data_volume: None,
            fix: &[(SKIP, "runAsUser,runAsGroup")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: true,
            image_uid: Some(10002),
            image_changes: &["imageUser", "imageVolumes"],
            image_volume: Some("/var/lib/volume-app"),
        },
        App {
            name: "jvm",
            what: "Debian's OpenJDK 17 JRE: an HTTP server appending to /opt/app/logs/app.log, \
                   as root",
            kind: Kind::Server {
                port: 8080,
                check: jvm,
            },
            data_volume: None,
            fix: &[(WRITABLE, "/opt/app/logs")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
        App {
            name: "named-user",
            what: "USER app (a name), data under /home/app/data",
            kind: Kind::Server {
                port: 8080,
                check: named,
            },
            data_volume: None,
            fix: &[(WRITABLE, "/home/app/data")],
            fix_env: &[],
            runs_hardened_as_is: false,
            runs_image_aware: false,
            image_uid: None,
            image_changes: &[],
            image_volume: None,
        },
    ]
}

/// The app's legacy manifest (no securityContext); with the fix's annotations on the pod
/// template and its environment variables on the container when `fixed`.
pub fn manifest(app: &App, fixed: bool) -> Value {
    let (fix, fix_env) = if fixed {
        (app.fix, app.fix_env)
    } else {
        (&[][..], &[][..])
    };
    let annotations: serde_json::Map<String, Value> = fix
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let mut container = json!({
        "name": app.name,
        "image": image(app.name),
        // Every pod makes the kubelet ask the registry (the layers are pulled once).
        "imagePullPolicy": "Always",
    });
    if !fix_env.is_empty() {
        container["env"] = fix_env
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
    }
    let mut pod_spec = json!({"terminationGracePeriodSeconds": 2, "containers": []});
    if let Some(path) = app.data_volume {
        container["volumeMounts"] = json!([{"name": "data", "mountPath": path}]);
        pod_spec["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    }
    let labels = json!({"app": app.name});
    match app.kind {
        Kind::Server { port, .. } => {
            container["ports"] = json!([{"containerPort": port}]);
            pod_spec["containers"] = json!([container]);
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": app.name, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": pod_spec
                    }
                }
            })
        }
        Kind::CronJob { .. } => {
            pod_spec["containers"] = json!([container]);
            pod_spec["restartPolicy"] = json!("Never");
            json!({
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": app.name, "labels": labels},
                "spec": {
                    "schedule": "17 3 * * *",
                    "suspend": true,
                    "jobTemplate": {"spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": labels, "annotations": annotations},
                            "spec": pod_spec
                        }
                    }}
                }
            })
        }
    }
}
