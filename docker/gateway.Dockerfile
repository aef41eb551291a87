# syntax=docker/dockerfile:1
# Gateway: Telegram webhook, /healthz /readyz /metrics on 8080 and the
# Results gRPC service on 50051. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t polybot-gateway .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin gateway \
    && install -D -m 0755 target/release/gateway /out/gateway

FROM debian:bookworm-slim
# Debian security updates replace pinned package versions in the archive, so
# pins would break rebuilds; the base image tag is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin polybot \
    && install -d -o 10001 -g 10001 /var/lib/polybot
COPY --from=builder /out/gateway /usr/local/bin/gateway
ENV POLYBOT_LOG_FORMAT=json \
    POLYBOT_DATA_DIR=/var/lib/polybot \
    POLYBOT_HTTP_LISTEN=0.0.0.0:8080 \
    POLYBOT_GRPC_LISTEN=0.0.0.0:50051
USER 10001:10001
WORKDIR /var/lib/polybot
EXPOSE 8080 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["gateway", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["gateway"]
