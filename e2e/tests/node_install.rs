//! kube-harden installed as users install it (docs/node.md "kube-harden in the cluster"): its
//! OCI image assembled without a container engine (scripts/image-build.sh) and checked, then a
//! node of its own (`E2E_NODE_WEBHOOK=in-cluster`: no kube-harden on the host) where the image
//! is imported and the shipped manifests applied; then, on that installation, what operators
//! do to it (docs/operations.md "Changes without a gap"): restart, upgrade, certificate
//! renewal and replica deletion under a stream of pod creations, every replica gone
//! (fail-open), and uninstalling in any order. Needs root; `make node-e2e` runs it after the
//! node suite. Tests run one at a time, in the order below, on one node (each installs
//! kube-harden first if an earlier one did not). `cargo test -p kube-harden-e2e --test
//! node_install -- <filter>`.

mod node_install {
    pub mod change;
    pub mod failopen;
    pub mod image;
    pub mod install;
    pub mod uninstall;
}

use std::process::ExitCode;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube_harden_e2e::node::{Node, SharedNode};
use kube_harden_e2e::{Result, repo_root, target_dir};
use libtest_mimic::{Arguments, Failed, Trial};
use node_install::image::{self, Image};
use node_install::{change, failopen, install, uninstall};

/// The image, built once for every test.
static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();

fn built_image() -> Result<&'static Image, Failed> {
    IMAGE
        .get_or_init(|| image::build("kube-harden.oci.tar", false, None).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| format!("the image could not be built: {e}").into())
}

/// The node with no kube-harden on the host.
static NODE: LazyLock<SharedNode> = LazyLock::new(|| {
    SharedNode::new(
        target_dir(&repo_root()).join("e2e-node-install"),
        &[("E2E_NODE_WEBHOOK", "in-cluster")],
    )
});

/// Runs `test` on the shared in-cluster node.
fn with_node(test: impl FnOnce(&Node) -> Result<()>) -> Result<(), Failed> {
    NODE.with(test).map_err(Failed::from)
}

/// kube-harden installed (imported and applied, 2/2 Ready) unless it already is.
async fn ensure_installed(node: &Node, image: &Image) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(node.client(), install::NS);
    if deployments.get_opt("kube-harden").await?.is_none() {
        install::import(node, image)?;
        node.kubectl(&["apply", "-k", node.env("E2E_KUBE_HARDEN_OVERLAY")?], None)?
            .ok("kubectl apply -k")?;
    }
    node.wait_deployment(install::NS, "kube-harden", Duration::from_secs(180))
        .await?;
    Ok(())
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("image_is_reproducible_non_root_and_shell_free", || {
            image::image_is_reproducible_non_root_and_shell_free(built_image()?)
                .map_err(|e| Failed::from(e.to_string()))
        }),
        Trial::test("shipped_manifests_run_in_cluster_and_harden", || {
            let image = built_image()?;
            with_node(|node| {
                node.block_on(install::shipped_manifests_run_in_cluster_and_harden(
                    node, image,
                ))
            })
        }),
        Trial::test(
            "no_gap_during_restart_upgrade_certificate_renewal_and_replica_deletion",
            || {
                let image = built_image()?;
                // The upgrade's image: another version string, so another binary and digest.
                let upgrade = image::build(
                    "kube-harden-upgrade.oci.tar",
                    false,
                    Some(&format!("{}-upgrade", image.version)),
                )
                .map_err(|e| Failed::from(format!("the upgrade image: {e}")))?;
                if upgrade.digest == image.digest {
                    return Err(
                        format!("the upgrade image has the same digest {}", image.digest).into(),
                    );
                }
                with_node(|node| {
                    node.block_on(async {
                        ensure_installed(node, image).await?;
                        change::no_gap_during_change(node, &upgrade).await
                    })
                })
            },
        ),
        Trial::test("fail_open_when_every_replica_is_gone", || {
            let image = built_image()?;
            with_node(|node| {
                node.block_on(async {
                    ensure_installed(node, image).await?;
                    failopen::fail_open_when_every_replica_is_gone(node).await
                })
            })
        }),
        Trial::test("uninstall_in_any_order_leaves_pod_creation_working", || {
            let image = built_image()?;
            with_node(|node| {
                node.block_on(async {
                    ensure_installed(node, image).await?;
                    uninstall::uninstall_in_any_order_leaves_pod_creation_working(node).await
                })
            })
        }),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    NODE.down();
    conclusion.exit_code()
}
