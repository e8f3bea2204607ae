# syntax=docker/dockerfile:1
# modelgate container images.
#   docker build --target runtime -t modelgate .   # distroless, no shell: docker run, GitHub
#   docker build --target gitlab  -t modelgate:gitlab .   # busybox shell for GitLab CI jobs
# Builds the same with Docker (BuildKit), buildah (`buildah bud --layers`) and podman (`podman
# build`). The scan needs no network. The release workflow builds from a tagged commit, adds the
# version, revision and creation-time labels (`--label`), and publishes images whose digests
# users pin; a local build carries no such labels rather than made-up ones.
#
# Base images: fully qualified names, pinned by digest with the tag they were taken from in a
# comment. Dependabot (.github/dependabot.yml) proposes new digests; review and update the tag
# comment with them.

# docker.io/library/rust:1.95.0-slim-bookworm (multi-platform index)
FROM docker.io/library/rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p modelgate \
    && install -m 0755 target/release/modelgate /modelgate

# The default image: only the binary, no shell, runs as a non-root user. Mount the repository
# read-only and scan it: docker run --rm -v "$PWD:/work:ro" -w /work IMAGE scan .
# gcr.io/distroless/cc-debian12:nonroot (multi-platform index)
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
LABEL org.opencontainers.image.title="modelgate" \
      org.opencontainers.image.description="Static scanner and policy gate for ML model files" \
      org.opencontainers.image.source="https://github.com/modelgate/modelgate" \
      org.opencontainers.image.documentation="https://github.com/modelgate/modelgate/tree/main/docs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot" \
      org.opencontainers.image.base.digest="sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f"
COPY --from=build /modelgate /usr/local/bin/modelgate
ENTRYPOINT ["/usr/local/bin/modelgate"]

# GitLab runs job scripts with a shell: this variant adds the busybox of distroless's :debug image
# to the default image (labels, user and entrypoint are inherited). Use it with
# `image: { name: ..., entrypoint: [""] }`.
# gcr.io/distroless/cc-debian12:debug-nonroot (multi-platform index)
FROM gcr.io/distroless/cc-debian12:debug-nonroot@sha256:923320b891f20d5f4bd43ed3a72eeee2f3323d481d6f4bd8d0b2c96d1c0758bc AS busybox

FROM runtime AS gitlab
COPY --from=busybox /busybox /busybox
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox
LABEL org.opencontainers.image.title="modelgate (GitLab CI variant)" \
      org.opencontainers.image.description="Static scanner and policy gate for ML model files, with a busybox shell for CI jobs"

# Last stage = default build target.
FROM runtime
