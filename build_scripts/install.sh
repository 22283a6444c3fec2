#!/usr/bin/env bash
# Install everything Talkstudio needs on a fresh Debian machine: system libraries for Qt and
# OpenGL under X (from Debian), a Python 3.11 virtual environment in .venv, and the project with
# its dev extras (editable). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1
  libegl1 libgl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libnss3
  libasound2 libpulse0
  espeak-ng)  # espeak-ng: the phonetic front end's tests speak known sentences with it
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install.sh: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
  echo "install.sh: Talkstudio needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
# torch/torchvision first and pinned, so no resolver ever pulls a newer (multi-GB) build.
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check \
  "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'Running pip as the' || true
.venv/bin/python -c "import talkstudio.core, torch, cv2, PySide6, mediapipe, piq; print('install.sh: ready, torch', torch.__version__)"
