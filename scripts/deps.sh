#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages camhub needs, if any are missing.
#   scripts/deps.sh build   OpenCV's, TurboJPEG's, FFmpeg's (libavcodec,
#                           libswscale) and libyuv's development files and a
#                           C++ compiler
#   scripts/deps.sh test    the above, plus what the tests drive: Xvfb, X tools,
#                           Prometheus (the dashboard test), qemu-user with binfmt
#                           (arm64 containers),
#                           ImageMagick, GStreamer plugins, ffmpeg, and
#                           opencv-doc for its sample clips (real footage),
#                           mosquitto-clients (a real MQTT client)
#   scripts/deps.sh bench   the build packages, plus tjbench, ffmpeg, opencv-doc, Chromium,
#                           the ZeroMQ baseline's and the chart's Python modules
#                           and GStreamer's RTSP server (an H.264 IP camera)
set -euo pipefail

build=(pkg-config g++ libopencv-dev libturbojpeg0-dev libavcodec-dev libswscale-dev libavutil-dev libyuv-dev)
test=(xvfb x11-apps imagemagick xdotool gstreamer1.0-plugins-base gstreamer1.0-plugins-good chromium ffmpeg iproute2 curl python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 opencv-doc mosquitto-clients prometheus qemu-user-static binfmt-support)

bench=(libjpeg-turbo-progs ffmpeg python3-zmq python3-opencv python3-numpy python3-matplotlib opencv-doc gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 chromium)

case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${build[@]}" "${test[@]}") ;;
bench) want=("${build[@]}" "${bench[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "camhub: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
