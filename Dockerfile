# syntax=docker/dockerfile:1
# Vitals as a container: a multi-stage build of the one binary, run as a non-root user in a
# small runtime image (distroless: glibc and CA certificates, no shell, no package manager).
#
#   docker build -t vitals .            (or: podman build / buildah bud)
#   docker run -d -p 127.0.0.1:8080:8080 -v vitals-data:/var/lib/vitals \
#       -e VITALS_ADMIN_TOKEN="$(vitals token new)" vitals
#
# The image's configuration (/etc/vitals/vitals.toml, from packaging/container/vitals.toml)
# listens on 0.0.0.0:8080 inside the container, which Vitals allows only with access tokens: it
# configures an admin token from $VITALS_ADMIN_TOKEN and refuses to start without it. Mount your
# own configuration over it (packaging/container/compose.yaml shows how).
# The base images are arguments so that a mirror or a local copy can stand in for them.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit and buildah both honour them).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vitals \
    && install -D -m 0755 target/release/vitals /out/usr/bin/vitals \
    && install -d -m 0750 /out/var/lib/vitals

FROM ${RUNTIME_IMAGE}
# 65532 is distroless' "nonroot" user; the data volume belongs to it.
COPY --from=build /out/usr/bin/vitals /usr/bin/vitals
COPY --from=build --chown=65532:65532 /out/var/lib/vitals /var/lib/vitals
COPY packaging/container/vitals.toml /etc/vitals/vitals.toml
USER 65532:65532
WORKDIR /var/lib/vitals
VOLUME ["/var/lib/vitals"]
EXPOSE 8080
# /monitor: 200 when store, scheduler and pipeline work (no token needed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/bin/vitals", "healthcheck", "--url", "http://127.0.0.1:8080/monitor"]
ENTRYPOINT ["/usr/bin/vitals"]
CMD ["serve", "--config", "/etc/vitals/vitals.toml"]
