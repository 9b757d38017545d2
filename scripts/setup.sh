#!/usr/bin/env bash
# Set up what interlive needs on a Debian machine, skipping what is already there.
#   scripts/setup.sh serve   -> Python venv with interlive installed
#   scripts/setup.sh test    -> the same plus the test tools: Chromium, ffmpeg
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-serve}
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMPS=.stamps
mkdir -p "$STAMPS"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2; exit 1; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing packages ${missing[*]} and no apt-get to install them" >&2; exit 1
  fi
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  echo "setup: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. Python and a venv (Debian ships venv separately).
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup: $PYTHON must be Python >= 3.11" >&2; exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi

# libopus for opuslib-next (Opus in-band FEC); Debian images ship it, minimal ones may not.
apt_install libopus0

# 2. interlive and its dependencies, again only when pyproject.toml changed.
if [ ! -f "$STAMPS/pip" ] || [ pyproject.toml -nt "$STAMPS/pip" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  touch "$STAMPS/pip"
fi

# 3. Test tools: a real browser and an independent RTP/RTMP client.
if [ "$target" = test ]; then
  apt_install chromium ffmpeg nftables iproute2
  # a real RTMP server (CDN origin) for the bypass-live tests, run by them as a user process
  apt_install nginx libnginx-mod-rtmp
fi
