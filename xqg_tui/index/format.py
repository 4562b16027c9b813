"""Index folder layout, manifest schema and validation.

Layout (format version 1)::

    DIR/manifest.json          written last, by atomic rename: the index is complete
    DIR/data-NNNNNN/           one immutable generation of files the manifest points to
        passages.jsonl         docid, title, text in index order
        passage_vectors.npy    (N, D)
        generated.jsonl        {"docid", "generated_queries": {lang: [...]}} in index order
        query_vectors/LANG.npy (N, NMAX_LANG, D), zero rows past a passage's count
        query_counts.npy       (N, L) int32, columns in manifest["generation"]["langs"] order
        query_sums/LANG.npy    (N, D) instead of query_vectors/ when manifest["store"] == "sums":
                               per-language sums only (mean/sum fusion, no per-query view, no n sweep)
        fused_vectors.npy      (N, D) the augmented vectors of the manifest's search defaults
    DIR/ann/KIND.faiss, KIND.json  optional approximate index and its sidecar (``xqg ann build``)
    DIR/work/                  chunk files and progress.json of a build in progress
    DIR/.lock                  held by the process that builds

A new build writes a fresh ``data-NNNNNN`` folder (hard-linking unchanged files)
and only then swaps ``manifest.json``; readers of the previous manifest keep
working on files that are never modified in place.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from ..errors import IndexError_
from ..io.atomic import fsync_dir  # noqa: F401  (re-exported for the builder)

FORMAT_NAME = "xqg-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WORK_DIR = "work"
PROGRESS = "progress.json"
LOCK = ".lock"
PASSAGES = "passages.jsonl"
PASSAGE_VECTORS = "passage_vectors.npy"
GENERATED = "generated.jsonl"
QUERY_VECTORS_DIR = "query_vectors"
QUERY_COUNTS = "query_counts.npy"
QUERY_SUMS_DIR = "query_sums"
STORES = ("full", "sums")  # manifest["store"]; absent = full (indexes made before it existed)
DTYPES = ("float32", "float16")
FUSIONS = ("sum", "mean")


def safe_join(root: Path, rel: str) -> Path:
    """Join a relative path from a manifest to ``root``, refusing anything that escapes it."""
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
        raise IndexError_(f"{root / MANIFEST}: unsafe path {rel!r} in manifest", "the manifest was tampered with; rebuild the index")
    parts = Path(rel).parts
    if any(p in ("..", "") for p in parts) or Path(rel).is_absolute():
        raise IndexError_(f"{root / MANIFEST}: path {rel!r} escapes the index folder", "the manifest was tampered with; rebuild the index")
    full = (root / rel).resolve()
    if root.resolve() not in full.parents and full != root.resolve():
        raise IndexError_(f"{root / MANIFEST}: path {rel!r} escapes the index folder (symlink?)", "rebuild the index")
    return root / rel


_LANG_FILENAME = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")


def check_lang_filename(lang: str, source: Path | str) -> str:
    """A language code becomes ``query_vectors/LANG.npy``: refuse codes that are not a
    plain name (a registered ``"../x"`` must not write outside the index)."""
    if not isinstance(lang, str) or not _LANG_FILENAME.fullmatch(lang):
        raise IndexError_(f"{source}: language code {lang!r} cannot be used in an index (letters, digits and _ only)", "use a plain language code such as 'ar'")
    return lang


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def data_dir_name(generation: int) -> str:
    return f"data-{generation:06d}"


def validate_manifest(root: Path, manifest: Any) -> dict[str, Any]:
    """Check the manifest's shape and version; return it. Raises IndexError_ with a clear reason."""
    where = root / MANIFEST
    if not isinstance(manifest, dict):
        raise IndexError_(f"{where}: not a JSON object", "rebuild the index")
    if manifest.get("format") != FORMAT_NAME:
        raise IndexError_(f"{where}: not an xqg index (format {manifest.get('format')!r})", "point --index at a folder made by `xqg build`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexError_(
            f"{where}: index format version {version!r}, this xqg reads version {FORMAT_VERSION}",
            "rebuild the index with this version of xqg (`xqg build` with the same arguments)",
        )
    for key in ("data_dir", "files", "encoder", "generation", "counts", "dtype", "search_defaults"):
        if key not in manifest:
            raise IndexError_(f"{where}: field '{key}' missing", "the index is damaged; rebuild it")
    if manifest.get("store", "full") not in STORES:
        raise IndexError_(f"{where}: field 'store': unknown {manifest.get('store')!r}", "rebuild the index with this version of xqg")
    shard = manifest.get("shard")
    if shard is not None and not (
        isinstance(shard, dict) and isinstance(shard.get("index"), int) and isinstance(shard.get("count"), int)
        and 0 <= shard["index"] < shard["count"]
    ):
        raise IndexError_(f"{where}: field 'shard': expected {{index, count}} with 0 <= index < count", "rebuild the shard")
    if manifest["dtype"] not in DTYPES:
        raise IndexError_(f"{where}: field 'dtype': unknown {manifest['dtype']!r}", "rebuild the index")
    safe_join(root, manifest["data_dir"])
    if not isinstance(manifest["files"], dict):
        raise IndexError_(f"{where}: field 'files' is not an object", "rebuild the index")
    for rel in manifest["files"]:
        safe_join(root, rel)
    return manifest


def _reads_as_ours(path: Path, keys: tuple[str, ...]) -> bool:
    """Whether ``path`` is a JSON object we wrote: ``format`` is ours, or every key is there."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    return data.get("format") == FORMAT_NAME or bool(keys) and all(k in data for k in keys)


# The build's own config.json under work/ (written before any model work).
_WORK_CONFIG_KEYS = ("corpus", "out", "encoder", "generator", "chunk_size")


def foreign_entries(folder: Path) -> list[str] | None:
    """Why ``folder`` is not ours to build into: ``None`` when it is (missing, empty, an
    index or a half-built index of ours), else the names that make it someone else's.

    A build deletes ``work/`` and old ``data-*`` generations and replaces
    ``manifest.json``: it must never do that in a folder of the user's.
    """
    if not folder.exists():
        return None
    if not folder.is_dir():
        return [folder.name]
    names = sorted(child.name for child in folder.iterdir())
    if not names or names == [LOCK]:
        return None
    manifest = folder / MANIFEST
    if manifest.is_file() and _reads_as_ours(manifest, ()):
        return None
    config = folder / WORK_DIR / "config.json"
    if not manifest.exists() and config.is_file() and _reads_as_ours(config, _WORK_CONFIG_KEYS):
        return None  # a build of ours that was stopped before its first manifest
    return names
