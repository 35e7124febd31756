#!/usr/bin/env bash
# On the GPU machine, from the repository root with .site and .gl carried: unpack, check that SAPIEN finds the NVIDIA
# Vulkan device and an env resets, then start the given command in its own session (it outlives this call) with its
# log in runs/gpu.log. Example: bash benchmarks/gpu/start.sh python3 -m generators.flywheel --task lift --workers 14 --device cuda
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
tar -C /tmp -xJf .site/site.tar.xz && mkdir -p ~/.cache && tar -C ~/.cache -xJf .site/cache.tar.xz || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -c "
import sapien, gymnasium as gym, dexenvs
import generators.flywheel, agents.train, agents.residual, agents.evaluate
sapien.Scene(); e = gym.make('DexLift-v0'); e.reset(seed=0); print('sapien', sapien.__version__, 'and DexLift-v0 ok')" || exit 1
mkdir -p runs
setsid nohup "$@" > runs/gpu.log 2>&1 < /dev/null &
echo $! > runs/gpu.pid
echo "started: $*"
