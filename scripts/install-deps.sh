#!/usr/bin/env bash
# Installs the Debian packages smp-cpp needs, only those that are missing.
set -euo pipefail
packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-pthread libdnnl-dev ocl-icd-opencl-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
