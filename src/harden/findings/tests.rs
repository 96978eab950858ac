//! Table tests of the findings: each once, none for what Pod Security reports, the data
//! directory at a mount point.

use super::*;
use serde_json::{Value, json};

fn names(spec: Value, kind: WorkloadKind) -> Vec<(FindingName, Option<String>)> {
    find(&PodSpec::of(&Json::from(&spec)), kind)
        .into_iter()
        .map(|f| (f.name, f.container))
        .collect()
}

fn c(name: &str) -> Option<String> {
    Some(name.to_owned())
}

const PROBED: &str = r#"{"livenessProbe": {"tcpSocket": {"port": 80}}, "readinessProbe": {"tcpSocket": {"port": 80}}}"#;

fn probed(extra: Value) -> Value {
    let mut base: Value = serde_json::from_str(PROBED).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn each_finding_once() {
    use FindingName::*;
    type Expected = Vec<(FindingName, Option<String>)>;
    let cases: Vec<(Value, WorkloadKind, Expected)> = vec![
        (
            json!({"containers": [probed(json!({"name": "a", "image": "a:1"}))]}),
            WorkloadKind::Pod,
            vec![],
        ),
        (
            json!({"containers": [{"name": "a", "image": "a:1"}]}),
            WorkloadKind::Deployment,
            vec![(NoLivenessProbe, c("a")), (NoReadinessProbe, c("a"))],
        ),
        (
            json!({"containers": [{"name": "a", "image": "a:1"}]}),
            WorkloadKind::Job,
            vec![],
        ),
        (
            json!({"containers": [{"name": "a", "image": "a:1"}]}),
            WorkloadKind::CronJob,
            vec![],
        ),
        (
            json!({"initContainers": [{"name": "init", "image": "i:1"},
                                   probed(json!({"name": "side", "image": "s:1", "restartPolicy": "Always"}))],
                "containers": [probed(json!({"name": "a", "image": "a:1"}))]}),
            WorkloadKind::Pod,
            vec![],
        ),
        (
            json!({"initContainers": [{"name": "side", "image": "s:1", "restartPolicy": "Always"}],
                "containers": [probed(json!({"name": "a", "image": "a:1"}))]}),
            WorkloadKind::Pod,
            vec![(NoLivenessProbe, c("side")), (NoReadinessProbe, c("side"))],
        ),
        (
            json!({"containers": [probed(json!({"name": "a", "image": "a:1", "securityContext": {
            "readOnlyRootFilesystem": false}}))]}),
            WorkloadKind::Pod,
            vec![(WritableRootFilesystem, c("a"))],
        ),
        (
            json!({"containers": [probed(json!({"name": "a", "image": "a:1", "securityContext": {
            "capabilities": {"add": ["NET_BIND_SERVICE"]}, "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true, "seccompProfile": {"type": "RuntimeDefault"}}}))]}),
            WorkloadKind::Pod,
            vec![],
        ),
        (
            json!({"containers": [probed(json!({"name": "a", "image": "nginx"})),
                               probed(json!({"name": "b", "image": "nginx:latest"})),
                               probed(json!({"name": "c", "image": "registry:5000/team/app"})),
                               probed(json!({"name": "d", "image": "registry:5000/team/app:1.2"})),
                               probed(json!({"name": "e", "image": "app@sha256:abcd"}))]}),
            WorkloadKind::Pod,
            vec![
                (ImageLatest, c("a")),
                (ImageLatest, c("b")),
                (ImageLatest, c("c")),
            ],
        ),
    ];
    for (spec, kind, expected) in cases {
        assert_eq!(names(spec.clone(), kind), expected, "{spec}");
    }
}

/// What Pod Security reports is not a finding too: each insecure value below fails a
/// `restricted` check of the same spec and gives no finding (one warning per violation).
#[test]
fn what_pod_security_reports_is_not_a_finding() {
    use crate::psa::{Check, check_restricted};
    let container = |sc: Value| json!({"containers": [probed(json!({"name": "a", "image": "a:1", "securityContext": sc}))]});
    let cases: Vec<(Value, Check)> = vec![
        (
            json!({"hostNetwork": true, "containers": []}),
            Check::HostNamespaces,
        ),
        (
            json!({"hostPID": true, "containers": []}),
            Check::HostNamespaces,
        ),
        (
            json!({"hostIPC": true, "containers": []}),
            Check::HostNamespaces,
        ),
        (
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}], "containers": []}),
            Check::HostPathVolumes,
        ),
        (
            json!({"containers": [probed(json!({"name": "a", "image": "a:1",
                "ports": [{"containerPort": 80, "hostPort": 8080}]}))]}),
            Check::HostPorts,
        ),
        (container(json!({"privileged": true})), Check::Privileged),
        (
            container(json!({"runAsNonRoot": false})),
            Check::RunAsNonRoot,
        ),
        (
            json!({"securityContext": {"runAsNonRoot": false}, "containers": []}),
            Check::RunAsNonRoot,
        ),
        (container(json!({"runAsUser": 0})), Check::RunAsUser),
        (
            json!({"securityContext": {"runAsUser": 0}, "containers": []}),
            Check::RunAsUser,
        ),
        (
            container(json!({"seccompProfile": {"type": "Unconfined"}})),
            Check::SeccompProfileBaseline,
        ),
        (
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": []}),
            Check::SeccompProfileBaseline,
        ),
        (
            container(json!({"allowPrivilegeEscalation": true})),
            Check::AllowPrivilegeEscalation,
        ),
        (
            container(json!({"capabilities": {"add": ["NET_RAW"]}})),
            Check::CapabilitiesRestricted,
        ),
    ];
    for (spec, check) in cases {
        assert_eq!(names(spec.clone(), WorkloadKind::Pod), vec![], "{spec}");
        let failing: Vec<Check> = check_restricted(None, &spec)
            .into_iter()
            .map(|v| v.check)
            .collect();
        assert!(failing.contains(&check), "{check} in {failing:?}: {spec}");
    }
}

#[test]
fn a_data_dir_at_a_mount_point_under_a_set_uid() {
    let data = json!([{"name": "data", "mountPath": "/var/lib/postgresql/data"}]);
    let pg = |env: Value, mounts: Value, sc: Value| {
        let mut c = probed(
            json!({"name": "db", "image": "postgres:16", "volumeMounts": mounts,
                                  "securityContext": sc}),
        );
        if !env.is_null() {
            c["env"] = env;
        }
        c
    };
    let uid = json!({"runAsUser": 2866});
    let env = |v: &str| json!([{"name": "PGDATA", "value": v}]);
    let finding = vec![(FindingName::DataDirIsMountPoint, c("db"))];
    // (pod securityContext, container, expected)
    type Found = Vec<(FindingName, Option<String>)>;
    let cases: Vec<(Value, Value, Found)> = vec![
        // The image's default PGDATA is the mount point.
        (
            uid.clone(),
            pg(Value::Null, data.clone(), json!({})),
            finding.clone(),
        ),
        (
            json!({}),
            pg(Value::Null, data.clone(), uid.clone()),
            finding.clone(),
        ),
        (
            uid.clone(),
            pg(env("/var/lib/postgresql/data/"), data.clone(), json!({})),
            finding.clone(),
        ),
        (
            uid.clone(),
            pg(
                env("/pg"),
                json!([{"name": "d", "mountPath": "/pg/"}]),
                json!({}),
            ),
            finding.clone(),
        ),
        // The fix: a subdirectory of the volume.
        (
            uid.clone(),
            pg(
                env("/var/lib/postgresql/data/pgdata"),
                data.clone(),
                json!({}),
            ),
            vec![],
        ),
        // Root (the entrypoint chowns), or the image's own user (unknown here).
        (
            json!({"runAsUser": 0}),
            pg(Value::Null, data.clone(), json!({})),
            vec![],
        ),
        (json!({}), pg(Value::Null, data.clone(), json!({})), vec![]),
        (
            uid.clone(),
            pg(Value::Null, data.clone(), json!({"runAsUser": 0})),
            vec![],
        ),
        // No volume there, or PGDATA not known.
        (uid.clone(), pg(Value::Null, json!([]), json!({})), vec![]),
        (
            uid.clone(),
            pg(
                json!([{"name": "PGDATA", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]),
                data.clone(),
                json!({}),
            ),
            vec![],
        ),
        (
            uid.clone(),
            {
                let mut c = pg(Value::Null, data.clone(), json!({}));
                c["envFrom"] = json!([{"configMapRef": {"name": "c"}}]);
                c
            },
            vec![],
        ),
        // Another app's data volume.
        (
            uid.clone(),
            pg(
                Value::Null,
                json!([{"name": "d", "mountPath": "/var/lib/redis"}]),
                json!({}),
            ),
            vec![],
        ),
    ];
    for (pod_sc, container, expected) in cases {
        let spec = json!({"securityContext": pod_sc, "containers": [container]});
        let found: Vec<_> = names(spec.clone(), WorkloadKind::Pod)
            .into_iter()
            .filter(|(n, _)| *n == FindingName::DataDirIsMountPoint)
            .collect();
        assert_eq!(found, expected, "{spec}");
    }
    let spec = json!({"securityContext": uid, "containers": [pg(Value::Null, data, json!({}))]});
    assert_eq!(
        find(&PodSpec::of(&Json::from(&spec)), WorkloadKind::Deployment)[0].reason,
        "PGDATA /var/lib/postgresql/data is a volume's mount point: as UID 2866 initdb cannot \
         chmod it; set PGDATA=/var/lib/postgresql/data/pgdata (a subdirectory)"
    );
}

#[test]
fn names_are_unique_and_display_reads_well() {
    let mut all: Vec<&str> = FindingName::ALL.iter().map(|f| f.as_str()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), FindingName::ALL.len());
    let f = Finding {
        name: FindingName::ImageLatest,
        container: c("web"),
        reason: "image nginx has no tag".into(),
    };
    assert_eq!(
        f.to_string(),
        "imageLatest (container web): image nginx has no tag"
    );
}
