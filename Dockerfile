# syntax=docker/dockerfile:1
# kube-harden container image: a statically linked binary on distroless "static" (no shell, no
# package manager, no libc: just CA certificates, /etc/passwd and tzdata), as a numeric non-root
# user.
#
#   make docker-build               (docker build when a container engine runs, otherwise the
#                                    same static build without it; see the Makefile)
#   docker build -t ghcr.io/kube-harden/kube-harden:0.1.0 --build-arg VERSION=0.1.0 .
#
# The build stage runs scripts/static-build.sh: the same cargo command `make static-check` runs
# and tests on the host, so the binary checked there (ldd: "not a dynamic executable") is the
# binary this image ships.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace (the lock file covers all members); .dockerignore keeps target/ out.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/static-build.sh \
    && cp target/static/x86_64-unknown-linux-gnu/release/kube-harden /kube-harden

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kube-harden" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that adds missing security settings to workloads" \
      org.opencontainers.image.source="https://github.com/kube-harden/kube-harden" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build --chown=0:0 --chmod=0555 /kube-harden /kube-harden
# distroless's "nonroot" user, numeric so the kubelet can check runAsNonRoot without /etc/passwd.
USER 65532:65532
# 8443: HTTPS webhook (/mutate, /audit); 8080: /metrics, /healthz, /readyz.
EXPOSE 8443 8080
ENTRYPOINT ["/kube-harden"]
CMD ["serve"]
