//! kube-harden installed as users install it (docs/node.md "kube-harden in the cluster"): its
//! OCI image assembled without a container engine (scripts/image-build.sh) and checked, then a
//! node of its own (`E2E_NODE_WEBHOOK=in-cluster`: no kube-harden on the host) where the image
//! is imported and the shipped manifests applied. Needs root; `make node-e2e` runs it after the
//! node suite. `cargo test -p kube-harden-e2e --test node_install -- <filter>`.

mod node_install {
    pub mod image;
    pub mod install;
}

use std::process::ExitCode;
use std::sync::OnceLock;

use kube_harden_e2e::node::Node;
use kube_harden_e2e::{repo_root, target_dir};
use libtest_mimic::{Arguments, Failed, Trial};
use node_install::image::{self, Image};

/// The image, built once for both tests.
static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();

fn built_image() -> Result<&'static Image, Failed> {
    IMAGE
        .get_or_init(|| image::build("kube-harden.oci.tar", false).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| format!("the image could not be built: {e}").into())
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
            let node = Node::start_with(
                target_dir(&repo_root()).join("e2e-node-install"),
                &[("E2E_NODE_WEBHOOK", "in-cluster")],
            )
            .map_err(|e| Failed::from(format!("the node could not come up: {e}")))?;
            let result = node.block_on(
                node_install::install::shipped_manifests_run_in_cluster_and_harden(&node, image),
            );
            node.down();
            result.map_err(|e| Failed::from(e.to_string()))
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
