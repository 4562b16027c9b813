"""What a result file records so that it can be reproduced: data checksums, model
ids, library versions, seed and timestamps."""
from __future__ import annotations

import hashlib
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return {"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("xqg-tui", "numpy", "scipy", "torch", "transformers", "faiss-cpu", "ir-measures", "nltk", "matplotlib", "plotext"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def index_record(index: Any) -> dict[str, Any]:
    """Model ids and data identity of an index, from its manifest."""
    m = index.manifest
    enc = m.get("encoder") or {}
    gen = m.get("generator") or {}
    generation = m.get("generation") or {}
    manifest_path = Path(index.root) / "manifest.json"
    return {
        "path": str(index.root),
        "manifest_sha256": sha256_file(manifest_path) if manifest_path.exists() else None,
        "created": m.get("created"),
        "passages": index.size,
        "encoder": {k: enc.get(k) for k in ("model_id", "source", "weights_sha256", "dim", "pooling", "normalize", "query_prefix", "passage_prefix") if k in enc},
        "generator": {k: gen.get(k) for k in ("model_id", "source", "weights_sha256") if k in gen} if gen else None,
        "generation": {k: generation.get(k) for k in ("source", "spec", "langs", "queries_per_lang", "seed", "equal_counts") if k in generation},
        "inputs": m.get("inputs"),
        "search_defaults": m.get("search_defaults"),
    }


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def provenance(index: Any, data_files: Iterable[str | Path], seed: int, started: str, seconds: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "seed": seed,
        "started": started,
        "finished": now_iso(),
        "seconds": round(seconds, 2),
        "command": sys.argv[:] if sys.argv and "xqg" in Path(sys.argv[0]).name else None,
        "index": index_record(index) if index is not None else None,
        "data_files": [file_record(p) for p in dict.fromkeys(str(p) for p in data_files)],
        "libraries": library_versions(),
        "platform": platform.platform(),
        **(extra or {}),
    }
