#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: a virtual environment with the package and its dependencies, and a software
# Vulkan driver only when SAPIEN cannot create a render device. Prints what it did. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEX_VENV:-.venv}"
PY="${PYTHON:-python3}"
say() { printf '[setup] %s\n' "$*"; }

if [ -x "$VENV/bin/python" ]; then
  say "reusing virtual environment $VENV"
else
  "$PY" -m venv "$VENV"
  say "created virtual environment $VENV"
fi
VPY="$VENV/bin/python"

# torch first and pinned: 2.13.0 is the local CPU build here; anything unpinned would pull the CUDA build (gigabytes).
stamp="$VENV/.dex-installed"
want="$(cat pyproject.toml | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VPY" -c "import dexenvs, torch" 2>/dev/null; then
  say "python packages already installed (pyproject unchanged)"
else
  "$VPY" -m pip install -q --upgrade pip
  "$VPY" -m pip install -q "torch==2.13.0"
  "$VPY" -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
  say "installed torch $("$VPY" -c 'import torch; print(torch.__version__)') and the dexsuite package with its dependencies"
fi

render_ok() { "$VPY" - <<'PY' >/dev/null 2>&1
import warnings; warnings.filterwarnings("ignore")
import sapien
sapien.Scene()
PY
}

if render_ok; then
  say "SAPIEN finds a render device: no Vulkan driver needed"
else
  say "SAPIEN finds no render device: installing Mesa's lavapipe from bookworm-backports"
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
    say "ERROR: automatic Vulkan install supports Debian 12 (bookworm) only; this is ${PRETTY_NAME:-unknown}."
    say "Install a Vulkan driver with VK_KHR_external_semaphore_fd (Mesa >= 24.3 lavapipe, or a GPU driver) and rerun."
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  src=/etc/apt/sources.list.d/debian-backports.sources
  if [ ! -f "$src" ]; then
    # Same mirror and key as the system's own Debian source, suite bookworm-backports.
    uris="$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 | cut -d' ' -f2-)"
    key="$(grep -h '^Signed-By:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 | cut -d' ' -f2-)"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
      "${uris:-http://deb.debian.org/debian}" "${key:-/usr/share/keyrings/debian-archive-keyring.gpg}" | $SUDO tee "$src" >/dev/null
    say "added apt source $src"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  if render_ok; then
    say "installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers): SAPIEN now renders with lavapipe"
  else
    say "ERROR: SAPIEN still finds no render device after installing lavapipe"; exit 1
  fi
fi
# The leaderboard page is checked in a real headless browser (tests/test_leaderboard.py).
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
  say "a headless browser is installed"
else
  . /etc/os-release
  if [ "${ID:-}" = "debian" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
    say "installed chromium $(dpkg-query -W -f='${Version}' chromium) for the leaderboard page's test"
  else
    say "no headless browser: install chromium to run the leaderboard page's test"
  fi
fi
say "ready: activate with 'source $VENV/bin/activate'"
