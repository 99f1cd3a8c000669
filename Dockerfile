# syntax=docker/dockerfile:1
# Image of weft-controller. Build from the repository root:
#   docker build -t <registry>/weft-controller:<version> .
# Not built in CI (no container engine there); see README.md.

# Builder and runtime share Debian 12 (bookworm) so the binary's glibc matches the base image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p weft-policy-controller --bin weft-controller \
    && cp target/release/weft-controller /weft-controller

# distroless/cc: glibc and libgcc only; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /weft-controller /weft-controller
# The "nonroot" user of distroless, numeric so the kubelet can check runAsNonRoot.
USER 65532:65532
EXPOSE 8080 8090 9443
ENTRYPOINT ["/weft-controller"]
