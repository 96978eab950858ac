//! `kube-harden-bench`: the server and control-plane benchmarks (the engine benchmark is
//! `cargo bench -p kube-harden-bench --bench engine`).
//!
//! ```text
//! kube-harden-bench server [--bin PATH] [--seconds N]       kube-harden serve vs the canned server
//! kube-harden-bench controlplane [--bin PATH] [--pods N]    pod creation through kube-apiserver
//! kube-harden-bench peers [--bin PATH] [--pods N] [--long-seconds S]
//!                                                          beside Kyverno, Gatekeeper, MutatingAdmissionPolicy
//! kube-harden-bench patch-shapes [--pods N] [--rounds R] [--profile-seconds S]
//!                                                          kube-apiserver's CPU by patch shape
//! kube-harden-bench canned CERT KEY [ANSWERS_DIR]           the canned server (prints its address)
//! ```

use std::path::PathBuf;

use kube_harden_bench::{canned, controlplane, patch_shapes, peers, repo_dir, server};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = flag(&args, "--bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("target/release/kube-harden"));
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    match args.first().map(String::as_str) {
        Some("server") => {
            let seconds = flag(&args, "--seconds").map_or(5, |s| s.parse().expect("--seconds N"));
            runtime().block_on(server::run(&server::Options { bin, seconds }));
        }
        Some("controlplane") => {
            let pods = flag(&args, "--pods").map_or(400, |s| s.parse().expect("--pods N"));
            runtime().block_on(controlplane::run(&bin, pods));
        }
        Some("peers") => {
            let pods = flag(&args, "--pods").map_or(400, |s| s.parse().expect("--pods N"));
            let long =
                flag(&args, "--long-seconds").map_or(0, |s| s.parse().expect("--long-seconds S"));
            runtime().block_on(peers::run(&bin, pods, long));
        }
        Some("patch-shapes") => {
            let number = |name: &str, default: usize| {
                flag(&args, name).map_or(default, |s| s.parse().expect("a number"))
            };
            runtime().block_on(patch_shapes::run(&patch_shapes::Options {
                pods: number("--pods", 400),
                rounds: number("--rounds", 3),
                profile_seconds: number("--profile-seconds", 0) as u64,
            }));
        }
        Some("canned") => {
            let (Some(cert), Some(key)) = (args.get(1), args.get(2)) else {
                eprintln!("usage: kube-harden-bench canned CERT KEY [ANSWERS_DIR]");
                std::process::exit(2);
            };
            let cert = std::fs::read(cert).expect("certificate file");
            let key = std::fs::read(key).expect("key file");
            // Each file of ANSWERS_DIR is the answer at /answer/<its name>.
            let mut answers = std::collections::HashMap::new();
            if let Some(dir) = args.get(3) {
                for entry in std::fs::read_dir(dir).expect("answers directory") {
                    let path = entry.expect("answers directory entry").path();
                    let name = path.file_name().expect("file name").to_string_lossy();
                    let answer = std::fs::read(&path).expect("answer file");
                    answers.insert(format!("/answer/{name}"), answer.into());
                }
            }
            runtime().block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1");
                println!("{}", listener.local_addr().expect("address"));
                canned::serve(listener, &cert, &key, answers).await;
            });
        }
        _ => {
            eprintln!(
                "usage: kube-harden-bench server [--bin PATH] [--seconds N] | controlplane [--bin PATH] [--pods N] | peers [--bin PATH] [--pods N] [--long-seconds S] | patch-shapes [--pods N] [--rounds R] [--profile-seconds S] | canned CERT KEY [ANSWERS_DIR]"
            );
            std::process::exit(2);
        }
    }
}
