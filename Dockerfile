# camhub: the hub, the agent and the viewer in one image.
#   docker compose up            (see docker-compose.yml)
#   docker build -t camhub .     then e.g.  docker run camhub hub
#
# Build args:
#   GOPROXY  the Go module proxy for the build (default: Go's own). The test
#            on a machine without direct access points it at a local copy of
#            the module cache: see deploy/docker/README.md.

# ---- build: cgo + OpenCV ---------------------------------------------------
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopencv-dev libturbojpeg0-dev \
      libavcodec-dev libswscale-dev libavutil-dev \
 && rm -rf /var/lib/apt/lists/*
ARG GOPROXY=https://proxy.golang.org,direct
ENV GOPROXY=${GOPROXY} CGO_ENABLED=1 GOFLAGS=-mod=readonly
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
RUN go build -trimpath -ldflags "-s -w -X camhub/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/hub ./cmd/agent ./cmd/viewer

# ---- runtime: only the shared libraries the binaries link --------------------
FROM debian:bookworm-slim
# The OpenCV modules gocv links (readelf -d: NEEDED), which bring in their own
# dependencies; gstreamer1.0-plugins-base for GStreamer pipelines such as
# "videotestsrc ! videoconvert ! appsink" (add -good/-bad/-ugly for more);
# ca-certificates for TLS to a hub or an https/rtsps camera. libavcodec59,
# libswscale6 and libavutil57, which the agent links for H.264
# (internal/avcodec), come with libopencv-videoio406.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 \
      libopencv-videoio406 libopencv-video406 libopencv-highgui406 \
      libopencv-objdetect406 libopencv-calib3d406 libopencv-features2d406 \
      libopencv-dnn406 libopencv-photo406 libturbojpeg0 \
      gstreamer1.0-plugins-base ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --gid video --no-create-home --home-dir /var/lib/camhub \
      --shell /usr/sbin/nologin camhub \
 && install -d -o camhub -g video -m 0750 /var/lib/camhub
COPY --from=build /out/hub /out/agent /out/viewer /usr/local/bin/
# An HTTP health probe in bash (/dev/tcp): the image has no curl or wget.
COPY deploy/docker/healthcheck.sh /usr/local/bin/camhub-healthcheck
USER 10001:video
WORKDIR /var/lib/camhub
# 4222 NATS clients, 8222 NATS monitoring, 9100 hub /metrics+/healthz,
# 9101 agent /metrics+/healthz, 8080 the viewer's web grid.
EXPOSE 4222 8222 9100 9101 8080
CMD ["hub", "--storage", "file", "--store-dir", "/var/lib/camhub", "--http", ":9100"]
