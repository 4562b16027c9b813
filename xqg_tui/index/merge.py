"""``xqg merge``: combine the shards of one corpus (built with ``--shard I/N``).

Two layouts:

* ``sharded`` (default): ``DIR/manifest.json`` of kind ``"sharded"`` listing
  ``DIR/shard-NNNNN/`` folders, each a complete index whose files are
  hard-linked from the input shard (one copy only across filesystems);
* ``single``: one ordinary index; vectors are streamed shard by shard from the
  memory-mapped inputs into memory-mapped outputs (copied once, never all in RAM).

Everything is written into a temporary sibling folder, manifest last, and moved
to ``DIR`` by one rename: a failure leaves no half-written output.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.format import open_memmap

from ..errors import XQGError
from ..io.atomic import atomic_write_json, fsync_dir
from . import format as fmt
from .sharded import KIND_SHARDED, manifest_kind
from .store import Index, open_index, read_manifest

LAYOUTS = ("sharded", "single")
COPY_BLOCK_BYTES = 64 << 20  # rows copied per step when concatenating vectors
# Generation settings that must agree; the rest (equal_counts, and queries_per_lang
# of imported queries, which is a per-shard maximum) depend on the shard's data.
_DATA_DEPENDENT = {"equal_counts"}


@dataclass
class MergeResult:
    path: Path
    layout: str
    shards: int
    passages: int
    linked_files: int = 0
    copied_files: int = 0
    copied_bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _fail(message: str, hint: str = "") -> XQGError:
    return XQGError(message, hint)


def _encoder_problems(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    # Same rule as the searcher's encoder check: paths/model ids may differ between
    # machines for the same weights, the identity keys may not.
    from ..models.encoder import fingerprint_mismatches

    problems = fingerprint_mismatches(a, b)
    if not any(k in a and k in b for k in ("weights_sha256", "weights_bytes")) and a.get("model_id") != b.get("model_id"):
        problems.append(f"model_id: {a.get('model_id')!r} vs {b.get('model_id')!r}")
    return problems


def _generation_settings(m: dict[str, Any]) -> dict[str, Any]:
    g = {k: v for k, v in m["generation"].items() if k not in _DATA_DEPENDENT}
    if g.get("source") != "model":
        g.pop("queries_per_lang", None)
    return g


def validate_shards(paths: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Check that ``paths`` are all the shards of one build; return (path, manifest)
    sorted by shard number. Raises XQGError with one line naming the problem."""
    if not paths:
        raise _fail("merge: give the shard folders to merge")
    items: list[tuple[Path, dict[str, Any]]] = []
    for p in paths:
        p = Path(p)
        if manifest_kind(p) == KIND_SHARDED:
            raise _fail(f"{p}: already an index of shards; merge the original shard folders")
        m = read_manifest(p)
        if not isinstance(m.get("shard"), dict):
            raise _fail(f"{p}: not a shard (no 'shard' entry in its manifest)", "build shards with `xqg build --shard I/N`")
        items.append((p, m))
    p0, m0 = items[0]
    s0 = m0["shard"]
    count = int(s0.get("count", 0))
    seen: dict[int, Path] = {}
    for p, m in items:
        s = m["shard"]
        if int(s.get("count", -1)) != count:
            raise _fail(f"{p}: shard of {s.get('count')} shards, {p0} is a shard of {count}", "merge shards of one build")
        if s.get("corpus_sha256") != s0.get("corpus_sha256"):
            raise _fail(f"{p}: built from another corpus than {p0} (corpus sha256 differs)", "merge shards of one corpus")
        i = int(s.get("index", -1))
        if not 0 <= i < count:
            raise _fail(f"{p}: shard number {i} is not in 0..{count - 1}")
        if i in seen:
            raise _fail(f"shard {i}/{count} given twice: {seen[i]} and {p}")
        seen[i] = p
        problems = _encoder_problems(m0["encoder"], m["encoder"])
        if problems:
            raise _fail(f"{p}: built with another encoder than {p0} ({problems[0]})", "rebuild the shard with the same encoder")
        if _generation_settings(m) != _generation_settings(m0):
            diff = sorted(k for k in set(_generation_settings(m)) | set(_generation_settings(m0)) if _generation_settings(m).get(k) != _generation_settings(m0).get(k))
            raise _fail(f"{p}: generation settings differ from {p0} ({', '.join(diff)})", "rebuild the shard with the same generation options")
        if m["search_defaults"] != m0["search_defaults"]:
            raise _fail(f"{p}: fusion settings (alpha/fusion/langs) differ from {p0}", "rebuild the shard with the same --alpha/--fusion/--langs")
        if m.get("store", "full") != m0.get("store", "full"):
            raise _fail(f"{p}: built with --store {m.get('store', 'full')}, {p0} with --store {m0.get('store', 'full')}", "rebuild the shard with the same --store")
        if m["dtype"] != m0["dtype"] or m["counts"].get("dim") != m0["counts"].get("dim"):
            raise _fail(f"{p}: vector type or dimension differs from {p0}")
    missing = [str(i) for i in range(count) if i not in seen]
    if missing:
        raise _fail(f"merge: shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {count} missing", "give every shard folder 0..N-1 exactly once")
    items.sort(key=lambda it: int(it[1]["shard"]["index"]))
    return items


def _check_docids(items: list[tuple[Path, Index]], expected: int | None) -> int:
    owner: dict[str, int] = {}
    for i, (p, idx) in enumerate(items):
        for passage in idx.passages:
            j = owner.setdefault(passage.docid, i)
            if j != i:
                raise _fail(f"docid {passage.docid!r} is in {items[j][0]} and in {p}", "a docid must belong to one shard; rebuild the shards")
    if expected is not None and len(owner) != expected:
        raise _fail(f"the shards hold {len(owner)} passages, the corpus has {expected}", "rebuild the shards from the same corpus")
    return len(owner)


def _tmp_for(out: Path) -> Path:
    return out.parent / f".{out.name}.merge-{os.getpid()}.tmp"


def merge_shards(
    paths: Sequence[str | Path],
    out: str | Path,
    layout: str = "sharded",
    progress: Callable[[str], None] | None = None,
) -> MergeResult:
    """Merge complete shard indexes into ``out`` (which must not exist or be empty)."""
    if layout not in LAYOUTS:
        raise _fail(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _fail(f"{out}: already exists and is not empty", "choose a new --out folder")
    say = progress or (lambda _msg: None)
    items = validate_shards([Path(p) for p in paths])
    opened = [(p, open_index(p)) for p, _ in items]
    s0 = items[0][1]["shard"]
    total = _check_docids(opened, int(s0["corpus_passages"]) if s0.get("corpus_passages") is not None else None)
    result = MergeResult(out, layout, len(items), total)
    tmp = _tmp_for(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.mkdir()
        if layout == "sharded":
            manifest = _write_sharded(items, opened, tmp, result, say)
        else:
            manifest = _write_single(items, opened, tmp, result, say)
        atomic_write_json(tmp / fmt.MANIFEST, manifest)  # last: the folder is complete
        fsync_dir(tmp)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.seconds = time.perf_counter() - t0
    return result


def _summed_manifest(items: list[tuple[Path, dict[str, Any]]], opened: list[tuple[Path, Index]]) -> dict[str, Any]:
    """The first shard's manifest with counts over all shards."""
    m0 = items[0][1]
    m = json.loads(json.dumps(m0))
    langs = list(m0["generation"]["langs"])
    per_lang = {l: sum(int(it[1]["counts"].get("per_lang", {}).get(l, 0)) for it in items) for l in langs}
    m["counts"] = {
        "passages": sum(idx.size for _, idx in opened),
        "dim": int(m0["counts"]["dim"]),
        "generated_queries": sum(per_lang.values()),
        "per_lang": per_lang,
    }
    if langs:
        counts = np.concatenate([np.stack([idx.query_counts[l] for l in langs], axis=1) for _, idx in opened])
        m["generation"]["equal_counts"] = bool(counts.size == 0 or counts.min() == counts.max())
        if m0["generation"].get("source") != "model":
            m["generation"]["queries_per_lang"] = int(counts.max()) if counts.size else 0
    m["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m["sharding"] = {
        "count": int(m0["shard"]["count"]),
        "corpus_sha256": m0["shard"].get("corpus_sha256"),
        "corpus_passages": m0["shard"].get("corpus_passages"),
        "sources": [str(p) for p, _ in items],
    }
    for key in ("shard", "stage_keys", "files", "data_dir", "generation_number"):
        m.pop(key, None)
    return m


def _link_or_copy(src: Path, dst: Path, result: MergeResult) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        result.linked_files += 1
    except OSError:  # another filesystem, or links not allowed: one copy
        shutil.copy2(src, dst)
        result.copied_files += 1
        result.copied_bytes += dst.stat().st_size


def _write_sharded(items, opened, tmp: Path, result: MergeResult, say) -> dict[str, Any]:
    entries = []
    for n, (p, m) in enumerate(items):
        name = f"shard-{n:05d}"
        say(f"linking shard {n}/{len(items)}: {p}")
        for rel in m["files"]:
            _link_or_copy(fmt.safe_join(p, rel), tmp / name / rel, result)
        # The shard keeps its own manifest (and so its checksums) byte for byte.
        shutil.copyfile(p / fmt.MANIFEST, tmp / name / fmt.MANIFEST)
        fsync_dir(tmp / name)
        entries.append({"path": name, "index": int(m["shard"]["index"]), "passages": opened[n][1].size, "source": str(p)})
    if result.copied_files:
        result.notes.append(f"{result.copied_files} files copied (hard links were not possible, e.g. another filesystem)")
    m = _summed_manifest(items, opened)
    m["kind"] = KIND_SHARDED
    m["shards"] = entries
    return m


def _copy_rows(dst: np.ndarray, start: int, src: Any) -> None:
    """Copy a memory-mapped source into ``dst[start:...]`` in bounded steps; a
    narrower query-vector array is zero-padded (rows past a passage's count)."""
    n = int(src.shape[0])
    row_bytes = max(1, int(np.prod(src.shape[1:])) * src.dtype.itemsize)
    step = max(1, COPY_BLOCK_BYTES // row_bytes)
    for a in range(0, n, step):
        b = min(n, a + step)
        block = np.asarray(src[a:b])
        if block.ndim == 3 and block.shape[1] != dst.shape[1]:
            dst[start + a : start + b, : block.shape[1]] = block
        else:
            dst[start + a : start + b] = block


def _concat_npy(path: Path, parts: list[Any], dtype: str, result: MergeResult) -> None:
    rows = sum(int(p.shape[0]) for p in parts)
    tail = tuple(int(x) for x in parts[0].shape[1:])
    if len(tail) == 2:  # query vectors: the widest shard's NMAX
        tail = (max(int(p.shape[1]) for p in parts), tail[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    dst = open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(rows,) + tail)  # zero-filled
    start = 0
    for p in parts:
        _copy_rows(dst, start, p)
        start += int(p.shape[0])
    dst.flush()
    del dst
    _fsync(path)
    result.copied_files += 1
    result.copied_bytes += path.stat().st_size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _concat_text(path: Path, sources: list[Path], result: MergeResult) -> None:
    with open(path, "wb") as out:
        for src in sources:
            with open(src, "rb") as f:
                last = b"\n"
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    last = chunk[-1:]
                if last != b"\n":
                    out.write(b"\n")
        out.flush()
        os.fsync(out.fileno())
    result.copied_files += 1


def _write_single(items, opened, tmp: Path, result: MergeResult, say) -> dict[str, Any]:
    m0 = items[0][1]
    data_name = fmt.data_dir_name(1)
    data = tmp / data_name
    data.mkdir()
    langs = list(m0["generation"]["langs"])
    dtype = m0["dtype"]
    datas = [fmt.safe_join(p, m["data_dir"]) for p, m in items]
    say("writing passages")
    _concat_text(data / fmt.PASSAGES, [d / fmt.PASSAGES for d in datas], result)
    say("copying passage vectors")
    _concat_npy(data / fmt.PASSAGE_VECTORS, [idx.passage_vectors for _, idx in opened], dtype, result)
    fused = "fused_vectors.npy"
    if all(f"{m['data_dir']}/{fused}" in m["files"] for _, m in items):
        from ..io.atomic import load_npy

        _concat_npy(data / fused, [load_npy(d / fused, mmap=True) for d in datas], dtype, result)
    if langs:
        _concat_text(data / fmt.GENERATED, [d / fmt.GENERATED for d in datas], result)
        counts = np.concatenate([np.stack([idx.query_counts[l] for l in langs], axis=1) for _, idx in opened]).astype(np.int32)
        np.save(data / fmt.QUERY_COUNTS, counts, allow_pickle=False)
        sums = m0.get("store", "full") == "sums"
        qdir = fmt.QUERY_SUMS_DIR if sums else fmt.QUERY_VECTORS_DIR
        for lang in langs:
            say(f"copying query vectors ({lang})")
            parts = [(idx.query_sums if sums else idx.query_vectors)[lang] for _, idx in opened]
            _concat_npy(data / qdir / f"{lang}.npy", parts, dtype, result)
    fsync_dir(data)
    files = {}
    for path in sorted(data.rglob("*")):
        if path.is_file():
            files[f"{data_name}/{path.relative_to(data).as_posix()}"] = fmt.file_record(path)
    m = _summed_manifest(items, opened)
    m.update(data_dir=data_name, generation_number=1, files=files)
    m["inputs"] = {
        "corpus": {"path": (m0.get("inputs") or {}).get("corpus", {}).get("path"), "sha256": m0["shard"].get("corpus_sha256")},
        "import_generated": None,
    }
    return m

