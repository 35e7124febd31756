#!/usr/bin/env bash
# On the GPU machine: wait up to $1 seconds while the started command runs, print its log without progress bars, and
# copy the files named after $1 (e.g. runs/flywheel/lift/state.json) and the log to $OUT.
cd "$(dirname "$0")/../.."
end=$(( $(date +%s) + $1 )); shift
while [ "$(date +%s)" -lt $end ] && kill -0 "$(cat runs/gpu.pid)" 2>/dev/null; do sleep 10; done
kill -0 "$(cat runs/gpu.pid)" 2>/dev/null && echo "still running" || echo "ended"
tr '\r' '\n' < runs/gpu.log | grep -v "it/s\|demo/s\|ep/s\|s/it\|s/demo\|%|" | tail -40
tr '\r' '\n' < runs/gpu.log | tail -2
cp "$@" runs/gpu.log "$OUT"/ 2>/dev/null; date
