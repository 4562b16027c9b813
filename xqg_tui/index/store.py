"""Opening a complete index: validated manifest, checked files, memory-mapped vectors."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_, InputError, XQGError
from ..io.atomic import load_npy
from ..types import Passage
from . import format as fmt
from .lines import JsonLines, RowSequence

# Full sha256 verification on open below this total size; above it only sizes
# and npy headers are checked unless verify=True (hashing GBs would make
# opening slow; `xqg index verify` does the full check).
FULL_VERIFY_BYTES = 512 << 20


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise
    except OSError as e:  # a folder named manifest.json, no permission, an I/O error
        raise IndexError_(f"{path}: cannot read ({e.strerror or e})", "check the index folder, or rebuild the index") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexError_(f"{path}: not valid JSON ({e.__class__.__name__})", "the index is damaged; rebuild it") from None


def _open_npy(path: Path, mmap: bool) -> np.ndarray:
    # load_npy checks the magic bytes and the header before numpy sees the file
    # (never unpickles; a header promising more bytes than the file has is refused).
    try:
        return load_npy(path, mmap=mmap)
    except InputError as e:
        if "pickle" in e.problem.lower() or "object" in e.problem.lower():
            raise IndexError_(f"{path}: holds Python objects (a pickle); refused for safety", "rebuild the index") from None
        if "not found" in e.problem:
            raise FileNotFoundError(path) from None  # open_index retries: a build may have just swapped the index
        raise IndexError_(f"{path}: truncated or damaged vector file ({e.problem})", "rebuild the index (`xqg build` with the same arguments)") from None


SUMS_HINT = "rebuild the index with --store full (the default) to keep every query vector"


class SumsOnly(dict):
    """``Index.query_vectors`` of an index built with ``--store sums``: it has no
    per-query vectors, and any code that asks for them gets a one-line XQGError."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __getitem__(self, lang: str) -> np.ndarray:
        raise XQGError(f"{self.root}: this index keeps only per-language sums of the query vectors (--store sums), "
                       f"not each query's vector", SUMS_HINT)


def sums_aggregate(sums: np.ndarray, counts: np.ndarray, fusion: str) -> np.ndarray:
    """The per-language aggregate (as :func:`fusion.language_aggregate` with all
    queries) from stored sums: the sum itself, or the sum over the count."""
    out = np.array(sums, dtype=np.float32, copy=True)
    if fusion == "mean":
        used = np.asarray(counts).astype(np.float32)
        nz = used > 0
        out[nz] /= used[nz, None]
    return out


FUSED_VECTORS = "fused_vectors.npy"


@dataclass
class Index:
    """A complete, validated index opened read-only."""

    root: Path
    manifest: dict[str, Any]
    passages: Sequence[Passage]  # JsonLines: parsed on access
    passage_vectors: np.ndarray  # (N, D), possibly memory-mapped
    query_vectors: dict[str, np.ndarray]  # lang -> (N, NMAX, D), memory-mapped
    query_counts: dict[str, np.ndarray]  # lang -> (N,)
    _generated: Sequence[dict[str, list[str]]] = field(repr=False, default_factory=list)
    query_sums: dict[str, np.ndarray] = field(default_factory=dict)  # lang -> (N, D), store "sums" only

    @property
    def store(self) -> str:
        """``full`` (every query vector) or ``sums`` (per-language sums and counts)."""
        return str(self.manifest.get("store", "full"))

    def sums_aggregate(self, lang: str, n: int | None, fusion: str) -> np.ndarray:
        """Aggregate of a sums index; ``n`` below a stored count cannot be computed."""
        counts = self.query_counts[lang]
        if n == 0:
            return np.zeros((self.size, self.dim), dtype=np.float32)
        if n is not None and counts.size and n < int(counts.max()):
            raise XQGError(
                f"{self.root}: cannot use {n} queries per language: this index keeps only the sums of all "
                f"{int(counts.max())} (--store sums)", SUMS_HINT)
        return sums_aggregate(self.query_sums[lang], counts, fusion)

    @property
    def langs(self) -> list[str]:
        return list(self.manifest["generation"]["langs"])

    @property
    def dim(self) -> int:
        return int(self.passage_vectors.shape[1])

    @property
    def size(self) -> int:
        return len(self.passages)

    @property
    def encoder_spec(self) -> str:
        return str(self.manifest["encoder"].get("model_id") or self.manifest["encoder"].get("source"))

    @cached_property
    def stored_fused(self) -> np.ndarray | None:
        """The fused matrix the build wrote for ``search_defaults`` (memory-mapped), or
        None when the index has none. One matrix to read instead of 1 + languages."""
        name = f"{self.manifest['data_dir']}/{FUSED_VECTORS}"
        if name not in self.manifest.get("files", {}):
            return None
        return load_npy(fmt.safe_join(self.root, name), mmap=True)

    @cached_property
    def docids(self) -> list[str]:
        """Every docid in row order (one pass over the passages file, then kept)."""
        return [p.docid for p in self.passages]

    @cached_property
    def docid_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.docids)}

    def generated(self, row: int) -> dict[str, list[str]]:
        """Generated queries of the passage at ``row``, by language."""
        return self._generated[row]

    def generated_for(self, docid: str) -> dict[str, list[str]]:
        return self._generated[self.docid_index[docid]]

    @property
    def search_defaults(self) -> dict[str, Any]:
        return dict(self.manifest["search_defaults"])


def read_manifest(root: Path) -> dict[str, Any]:
    root = Path(root)
    path = root / fmt.MANIFEST
    if not root.exists():
        raise IndexError_(f"{root}: no such index folder", "build one with `xqg build --corpus FILE --out DIR`")
    if not path.exists():
        if (root / fmt.WORK_DIR).exists() or any(root.glob(".data-*.tmp")):
            raise IndexError_(
                f"{root}: the index is incomplete (a build was started and did not finish)",
                "run the same `xqg build` command again: it resumes where it stopped",
            )
        raise IndexError_(f"{root}: not an xqg index (no {fmt.MANIFEST})", "build one with `xqg build`")
    return fmt.validate_manifest(root, _load_json(path))


def verify_files(root: Path, manifest: dict[str, Any], full: bool | None = None) -> None:
    """Check every file the manifest lists: present, right size, and (full) right sha256."""
    files = manifest["files"]
    total = sum(int(rec.get("bytes", 0)) for rec in files.values())
    do_hash = full if full is not None else total <= FULL_VERIFY_BYTES
    for rel, rec in files.items():
        path = fmt.safe_join(root, rel)
        if not path.exists():
            raise IndexError_(f"{path}: missing from the index", "the index is damaged; rebuild it")
        size = path.stat().st_size
        if size != rec.get("bytes"):
            raise IndexError_(
                f"{path}: {size} bytes, the manifest says {rec.get('bytes')} (truncated or replaced)",
                "the index is damaged; rebuild it (`xqg build` with the same arguments)",
            )
        if do_hash and fmt.sha256_file(path) != rec.get("sha256"):
            raise IndexError_(f"{path}: checksum mismatch", "the index is damaged; rebuild it (`xqg build` with the same arguments)")


def _check_array(path: Path, array: np.ndarray, shape: tuple[int, ...], dtype: str) -> None:
    """An index array must have exactly the shape and type the manifest promises."""
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise IndexError_(
            f"{path}: shape {array.shape} {array.dtype}, the manifest promises {shape} {dtype}",
            "the index is damaged or was edited; rebuild it (`xqg build` with the same arguments)",
        )


def _spot_check(rows: JsonLines[Any]) -> None:
    """Parse the first and last rows at open: a damaged file fails here, not at the
    first search (the checksum check, when on, covers every byte)."""
    if len(rows):
        rows[0], rows[len(rows) - 1]


def _passage_row(r: dict[str, Any]) -> Passage:
    return Passage(str(r["docid"]), str(r.get("title", "")), str(r["text"]))


def _generated_row(r: dict[str, Any]) -> dict[str, list[str]]:
    return {str(k): [str(q) for q in v] for k, v in (r.get("generated_queries") or {}).items()}


class _NoQueries(RowSequence[dict[str, list[str]]]):
    """The generated queries of an index built without any: an empty dict per row."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def _get(self, i: int) -> dict[str, list[str]]:
        return {}


def open_index(root: str | Path, verify: bool | None = None, mmap: bool = True) -> Index:
    """Open a complete index. Raises IndexError_ saying what is wrong and what to do.

    A build may swap in a new manifest and delete the previous data folder while
    we read: when a file is missing and the manifest has changed meanwhile, open
    the new one instead of calling the index damaged."""
    root = Path(root)
    for attempt in range(5):
        manifest = read_manifest(root)
        try:
            try:
                return _open_manifest(root, manifest, verify, mmap)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # A field of the manifest or of a row that is missing or of the wrong type.
                raise IndexError_(f"{root}: damaged index ({type(exc).__name__}: {exc})", "rebuild the index") from None
        except (IndexError_, FileNotFoundError) as exc:
            if attempt < 4 and _manifest_changed(root, manifest):
                continue
            if isinstance(exc, FileNotFoundError):
                raise IndexError_(f"{exc.filename or root}: missing from the index", "the index is damaged; rebuild it") from None
            raise
    raise AssertionError("unreachable")


def _manifest_changed(root: Path, manifest: dict[str, Any]) -> bool:
    try:
        now = read_manifest(root)
    except (IndexError_, OSError):
        return False
    return (now.get("data_dir"), now.get("generation_number")) != (manifest.get("data_dir"), manifest.get("generation_number"))


def _open_manifest(root: Path, manifest: dict[str, Any], verify: bool | None, mmap: bool) -> Index:
    verify_files(root, manifest, full=verify)
    data = fmt.safe_join(root, manifest["data_dir"])
    # Everything loaded below must be a file the manifest lists (and so was checked).
    needed = [fmt.PASSAGES, fmt.PASSAGE_VECTORS]
    sums = manifest.get("store", "full") == "sums"
    qdir = fmt.QUERY_SUMS_DIR if sums else fmt.QUERY_VECTORS_DIR
    if manifest["generation"]["langs"]:
        needed += [fmt.QUERY_COUNTS, fmt.GENERATED] + [f"{qdir}/{l}.npy" for l in manifest["generation"]["langs"]]
    for name in needed:
        if f"{manifest['data_dir']}/{name}" not in manifest["files"]:
            raise IndexError_(f"{root / fmt.MANIFEST}: {name} is not listed among the index files", "the manifest was damaged or edited; rebuild the index")
    counts = manifest["counts"]
    n = int(counts["passages"])
    # Text is read on demand (a table of line offsets, not the rows: see lines.py).
    passages = JsonLines(data / fmt.PASSAGES, _passage_row)
    if len(passages) != n:
        raise IndexError_(f"{data / fmt.PASSAGES}: {len(passages)} lines for {n} passages", "rebuild the index")
    _spot_check(passages)
    dim, dtype = counts.get("dim"), manifest["dtype"]
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise IndexError_(f"{root / fmt.MANIFEST}: field 'counts.dim': expected a positive whole number, got {dim!r}", "rebuild the index")
    P = _open_npy(data / fmt.PASSAGE_VECTORS, mmap)
    _check_array(data / fmt.PASSAGE_VECTORS, P, (n, dim), dtype)
    if f"{manifest['data_dir']}/{FUSED_VECTORS}" in manifest["files"]:
        # Read by block search and ANN builds: too few rows would silently hide passages.
        _check_array(data / FUSED_VECTORS, _open_npy(data / FUSED_VECTORS, mmap=True), (n, dim), dtype)
    langs = list(manifest["generation"]["langs"])
    qv: dict[str, np.ndarray] = SumsOnly(root) if sums else {}
    qs: dict[str, np.ndarray] = {}
    qc: dict[str, np.ndarray] = {}
    generated: Sequence[dict[str, list[str]]] = _NoQueries(n)
    if langs:
        C = _open_npy(data / fmt.QUERY_COUNTS, mmap=False)
        if C.shape != (n, len(langs)):
            raise IndexError_(f"{data / fmt.QUERY_COUNTS}: shape {C.shape}, expected {(n, len(langs))}", "rebuild the index")
        for j, lang in enumerate(langs):
            qpath = fmt.safe_join(data, f"{qdir}/{lang}.npy")
            Q = _open_npy(qpath, mmap)
            most = int(C[:, j].max()) if n else 0
            if sums:
                _check_array(qpath, Q, (n, dim), dtype)
            else:
                _check_array(qpath, Q, (n, max(most, Q.shape[1] if Q.ndim == 3 else 0), dim), dtype)
            if sums:
                qs[lang] = Q
            else:
                qv[lang] = Q
            qc[lang] = C[:, j].astype(np.int64)
        generated = JsonLines(data / fmt.GENERATED, _generated_row)
        if len(generated) != n:
            raise IndexError_(f"{data / fmt.GENERATED}: {len(generated)} rows for {n} passages", "rebuild the index")
        _spot_check(generated)
    return Index(root, manifest, passages, P, qv, qc, generated, qs)
