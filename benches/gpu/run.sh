#!/usr/bin/env bash
# The GPU embed bench (benches/README.md, "GPU"): reassemble the parts pack.sh made and the
# device calls copied into /root/stash, prepare the model, run the
# worker's embed bench with onnxruntime's CUDA execution provider against
# sentence-transformers on the same GPU.
set -uo pipefail
S=/root/stash
ls -la $S
mkdir -p /tmp/g && cat $S/part.* | tar -x -C /tmp/g || exit 2
if ! command -v zstd >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site $S/zstandard-*.whl && export PYTHONPATH=/tmp/site
fi
cd /tmp/g && for f in *.zst; do
  if command -v zstd >/dev/null; then zstd -q -d --long=27 --rm "$f"
  else python3 -c "import zstandard,sys; zstandard.ZstdDecompressor(max_window_size=2**31).copy_stream(open(sys.argv[1],'rb'), open(sys.argv[1][:-4],'wb'))" "$f" && rm "$f"; fi
done
ls -la /tmp/g
cd - >/dev/null
chmod +x /tmp/g/tessera-*
mkdir -p /tmp/ort && mv /tmp/g/libonnxruntime* /tmp/ort/
mkdir -p .tessera/models/wheels && cp /tmp/g/gt_*.whl .tessera/models/wheels/
/tmp/g/tessera-model ensure --state-dir .tessera || exit 3
export LD_LIBRARY_PATH=/tmp/ort:$(python3 - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for d in glob.glob(os.path.join(sp, "nvidia", "*", "lib")) + glob.glob(os.path.join(sp, "nvidia", "cu13", "lib")):
        dirs.add(d)
print(":".join(sorted(dirs)))
PY
)
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
nproc
export TESSERA_ROOT=$PWD RUST_LOG=info
# Smoke: the CUDA backend alone, so a failure to load shows its own error.
timeout 60 /tmp/g/tessera-worker --backend cuda --ort-dylib /tmp/ort/libonnxruntime.so.1.31.1 \
  --model-dir .tessera/models/all-MiniLM-L6-v2 --listen 127.0.0.1:3999 > $OUT/smoke.log 2>&1 &
for i in $(seq 1 40); do curl -sf 127.0.0.1:3999/health >/dev/null 2>&1 && break; sleep 1; done
curl -s -X POST 127.0.0.1:3999/v1/embeddings -H 'content-type: application/json' \
  -d '{"input":["GPU smoke test"]}' | head -c 200; echo
kill %1 2>/dev/null; sleep 1; tail -20 $OUT/smoke.log
/tmp/g/tessera-bench embed --worker /tmp/g/tessera-worker --ort-worker /tmp/g/tessera-worker \
  --ort-dylib /tmp/ort/libonnxruntime.so.1.31.1 --ort-backend cuda \
  --ort-worker-args="--max-batch-size 256 --max-batch-tokens 65536" \
  --python python3 --torch-device cuda --rounds ${ROUNDS:-3} 2>&1 | tee $OUT/bench.log
echo "bench rc=${PIPESTATUS[0]}"
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv
