# syntax=docker/dockerfile:1
# modelgate container images.
#   docker build --target runtime -t modelgate .   # distroless, no shell: docker run, GitHub
#   docker build --target gitlab  -t modelgate:gitlab .   # busybox shell for GitLab CI jobs
# The scan needs no network. The release workflow pins nothing by tag alone: it builds from a
# tagged commit and publishes images whose digests users pin.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p modelgate \
    && install -m 0755 target/release/modelgate /modelgate

# The default image: only the binary, no shell, runs as a non-root user. Mount the repository
# read-only and scan it: docker run --rm -v "$PWD:/work:ro" -w /work IMAGE scan .
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="modelgate" \
      org.opencontainers.image.description="Static scanner and policy gate for ML model files" \
      org.opencontainers.image.source="https://github.com/modelgate/modelgate" \
      org.opencontainers.image.documentation="https://github.com/modelgate/modelgate/tree/main/docs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /modelgate /usr/local/bin/modelgate
ENTRYPOINT ["/usr/local/bin/modelgate"]

# GitLab runs job scripts with a shell: this variant adds the busybox of distroless's :debug image
# to the default image (labels, user and entrypoint are inherited). Use it with
# `image: { name: ..., entrypoint: [""] }`.
FROM gcr.io/distroless/cc-debian12:debug-nonroot AS busybox

FROM runtime AS gitlab
COPY --from=busybox /busybox /busybox
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox
LABEL org.opencontainers.image.title="modelgate (GitLab CI variant)" \
      org.opencontainers.image.description="Static scanner and policy gate for ML model files, with a busybox shell for CI jobs"

# Last stage = default build target.
FROM runtime
