#!/usr/bin/env bash
# Packs what this project needs beyond a GPU machine's own Python 3.12 + CUDA torch, for a machine with no internet:
# the wheels (trimmed), the object library's cache and the Vulkan/GL loaders, into .site/ and .gl/ (git-ignored).
# Run it here (it downloads from the package registries); carry .site and .gl there and run benchmarks/gpu/start.sh.
# The trims keep the bundle under 64 MiB: robots other than the Inspire hand, sapien's denoiser CUDA device, headers and
# camera patterns, mani_skill's environment maps and examples, and diffusers' individual pipelines (we use schedulers).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
grep -qx '/.site/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; printf '/.site/\n/.gl/\n/.whl/\n' >> .git/info/exclude; }
mkdir -p .whl .site .gl
plat="--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
pkgs="sapien==3.0.3 mani_skill==3.0.1 gymnasium==1.4.0 farama-notifications trimesh==5.2.0 coacd==1.0.14 diffusers==0.42.1
  tyro==1.0.17 docstring_parser typeguard stable_baselines3==2.9.2 transforms3d dacite defusedxml importlib_resources
  GitPython gitdb smmap pytorch-kinematics==0.7.6 arm_pytorch_utilities pytorch-seed pyperclip"
$PY -m pip download -q --no-deps $plat -d .whl $pkgs
site=$(mktemp -d)/site
$PY -m pip install -q --no-deps --no-compile --target "$site" $plat .whl/*.whl
cd "$site"
rm -rf bin sapien/include sapien/sensor/assets/patterns sapien/vulkan_library/*.dylib sapien/oidn_library/*cuda* \
  mani_skill/examples mani_skill/assets/environment_maps/*.hdr mani_skill/utils/scene_builder/replicacad/*.hdr
for r in mani_skill/assets/robots/*; do [ "$(basename "$r")" = inspire_hand ] || rm -rf "$r"; done
find diffusers/pipelines diffusers/modular_pipelines -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
# mani_skill imports IPython for its notebook helper only; a stand-in with the names it and matplotlib look up.
mkdir -p IPython
printf 'def get_ipython():\n    return None\nversion_info = (8, 0, 0)\n' > IPython/__init__.py
printf 'class HTML(str):\n    pass\n\ndef display(*a, **k):\n    pass\n' > IPython/display.py
cd - >/dev/null
tar -C "$(dirname "$site")" -cf - site | xz -T0 -6 > .site/site.tar.xz
tar -C "${DEXSUITE_CACHE:-$HOME/.cache/dexsuite}/.." -cJf .site/cache.tar.xz "$(basename "${DEXSUITE_CACHE:-$HOME/.cache/dexsuite}")"
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial && apt-get $o update -qq && (cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -ch .site/* .gl/* | tail -1
