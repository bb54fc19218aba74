#!/usr/bin/env bash
# Install what the real-kernel oracle (models/kernel/harness.py) needs:
#   1. host tools from the host's own apt sources: QEMU (qemu-system-aarch64), the arm64
#      cross compiler and static C library, the arm64 UAPI headers;
#   2. into the cache ($XDG_CACHE_HOME/gicproof, else ~/.cache/gicproof): a static arm64
#      busybox and the Debian arm64 kernels (default: 5.10 from bullseye, 6.1 from
#      bookworm, 6.12 from trixie, the newest from sid), fetched with a private apt
#      configuration (arm64 only, the host's mirror URI) that leaves the host's apt
#      sources, architectures and package state untouched.
# Idempotent: when everything is present, a second run installs and downloads nothing.
#
# Usage: models/kernel/install-parts.sh [--refresh] [--kernels 5.10,6.1,6.12,sid]
#   --refresh   update the package lists and replace kernels that have newer packages
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

packages=(qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-parts: missing ${missing[*]} and no apt-get to install them" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-parts: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

cd "$root"
exec python3 -m models.kernel.harness --install "$@"
