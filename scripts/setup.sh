#!/usr/bin/env bash
# Install napari-wbcseg into ./.venv on a fresh Linux machine.
#   bash scripts/setup.sh          # the plugin and its runtime dependencies
#   bash scripts/setup.sh --test   # plus the test tools (pytest, pytest-qt, Xvfb support)
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "--test" ] && extra="[testing]"

# System libraries: a virtual X server for headless GUI tests and the xcb
# libraries Qt 6 needs to open a window (napari's default binding is PyQt6).
pkgs="xvfb libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-xkb1
libegl1 libgl1 libdbus-1-3 libfontconfig1"
if command -v apt-get >/dev/null 2>&1; then
  missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh VM often runs unattended upgrades: wait (bounded) for the dpkg lock
    # instead of failing at once with apt-get's exit status 100.
    lock_wait=${WBCSEG_APT_LOCK_TIMEOUT:-600}
    waited=0
    while command -v fuser >/dev/null 2>&1 \
        && $sudo_cmd fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1; do
      if [ "$waited" -ge "$lock_wait" ]; then
        echo "error: another package manager (apt/dpkg, e.g. unattended upgrades) still holds" \
          "the dpkg lock after ${lock_wait} s; wait for it to finish and run this script again" >&2
        exit 1
      fi
      [ "$waited" -eq 0 ] && echo "waiting for another apt/dpkg process to release the dpkg lock" \
        "(up to ${lock_wait} s)..." >&2
      sleep 5
      waited=$((waited + 5))
    done
    apt="$sudo_cmd apt-get -o DPkg::Lock::Timeout=$lock_wait"
    if ! { $apt install -y -qq $missing >/dev/null \
        || { $apt update -qq && $apt install -y -qq $missing >/dev/null; }; }; then
      echo "error: could not install the system packages:" $missing >&2
      echo "(if another apt/dpkg process holds the lock, wait for it and run this script again)" >&2
      exit 1
    fi
  fi
fi

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The regular PyPI builds of torch + torchvision, installed together while
# ignoring the machine's pip configuration (its local CPU-only torch has no
# matching torchvision).  See ../shared/ENVIRONMENT.md.
if ! python -c "import torch, torchvision" >/dev/null 2>&1; then
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    python -m pip install -q -c constraints.txt torch torchvision
fi
python -m pip install -q -c constraints.txt -e ".${extra}"
echo "napari-wbcseg installed in $(pwd)/.venv"
