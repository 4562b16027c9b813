"""Building an index: resumable, atomic, locked, and model-free when nothing changed.

Work is cut into fixed chunks of passages. Each (stage, chunk[, language]) result
is written atomically under ``work/`` in a folder named after a hash of every
setting that affects it, so

* killing the build loses at most the chunk in flight, and running the same
  command again skips everything already saved (no model call is repeated);
* a changed setting never reuses stale work;
* generation is seeded per (seed, chunk, language), so a resumed build produces
  the same queries as an uninterrupted one.

The finished files go to a fresh ``data-NNNNNN`` folder; ``manifest.json`` is
swapped in last. Rebuilding with another alpha, fusion or language subset
rewrites only the manifest and the fused matrix: no model is loaded.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import BuildLockedError, DiskFullError, IndexError_, InputError, XQGError
from ..io.atomic import atomic_write_json, atomic_write_text, load_npy, save_npy_atomic
from ..languages import PAPER_LANGUAGES, is_known, language_name, normalize_code
from ..types import Passage
from . import format as fmt
from .fusion import FusionSpec, augmented_matrix, language_aggregate, unequal_counts

STAGES = ("encode", "generate", "encode-queries", "fuse", "write")


class BuildCancelled(XQGError):
    """The build was cancelled; everything saved so far is kept and resumes."""


@dataclass
class BuildEvent:
    """A progress report. Consumers may drop intermediate events (only the latest matters)."""

    stage: str
    done: int
    total: int
    unit: str = "items"
    message: str = ""
    elapsed: float = 0.0
    level: str = "info"  # info | warning

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.done <= 0 or self.total <= self.done:
            return 0.0 if self.total <= self.done else None
        return (self.total - self.done) / self.rate if self.rate > 0 else None


ProgressCallback = Callable[[BuildEvent], None]


@dataclass
class BuildConfig:
    corpus: Path
    out: Path
    encoder: str = "offline"
    generator: str | None = None  # spec, or None / "none" for no generation
    import_generated: Path | None = None
    langs: list[str] | None = None  # None = the paper's seven (or the import file's)
    queries_per_lang: int = 5
    seed: int = 0
    dtype: str = "float32"
    alpha: float | None = None  # None = per-encoder default (see default_fusion)
    fusion: str | None = None
    chunk_size: int = 128
    batch_size: int = 32
    gen_batch_size: int = 16
    top_k: int | None = 10
    top_p: float | None = None
    temperature: float = 1.0
    max_new_tokens: int = 64
    max_query_length: int = 32
    max_passage_length: int = 128
    device: str = "auto"

    def __post_init__(self) -> None:
        self.corpus = Path(self.corpus)
        self.out = Path(self.out)
        if self.import_generated is not None:
            self.import_generated = Path(self.import_generated)
        if self.generator is not None and str(self.generator).strip().lower() in ("", "none"):
            self.generator = None
        if self.dtype not in fmt.DTYPES:
            raise XQGError(f"--dtype must be one of {', '.join(fmt.DTYPES)}, not {self.dtype!r}")
        if self.queries_per_lang < 0:
            raise XQGError(f"--queries-per-lang must be >= 0, not {self.queries_per_lang}")
        if self.chunk_size < 1:
            raise XQGError("chunk size must be >= 1")
        if self.fusion is not None and self.fusion not in fmt.FUSIONS:
            raise XQGError(f"--fusion must be one of {', '.join(fmt.FUSIONS)}, not {self.fusion!r}")
        if self.langs is not None:
            self.langs = [normalize_code(l) for l in self.langs]
            for lang in self.langs:
                if not is_known(lang):
                    raise XQGError(f"unknown language code {lang!r} in --langs", "use a known code or register it with xqg_tui.languages.register_language")


def default_fusion(encoder_normalizes: bool) -> tuple[str, float]:
    """The paper's (sum, 0.01) suits its un-normalised mBERT; unit-length encoders
    (E5) need a far larger alpha and mean fusion (measured on XQuAD and the demo)."""
    return ("mean", 0.1) if encoder_normalizes else ("sum", 0.01)


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return fmt.sha256_file(path)


class _Reporter:
    def __init__(self, callback: ProgressCallback | None, cancel: threading.Event | None) -> None:
        self.callback = callback
        self.cancel = cancel
        self.t0: dict[str, float] = {}
        self.stage_seconds: dict[str, float] = {}
        self.warnings: list[str] = []

    def start(self, stage: str) -> None:
        self.t0[stage] = time.perf_counter()

    def finish(self, stage: str) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - self.t0.get(stage, time.perf_counter())

    def __call__(self, stage: str, done: int, total: int, unit: str, message: str = "", level: str = "info") -> None:
        if level == "warning":
            self.warnings.append(message)
        if self.callback is not None:
            elapsed = time.perf_counter() - self.t0.get(stage, time.perf_counter())
            self.callback(BuildEvent(stage, done, total, unit, message, elapsed, level))

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise BuildCancelled("build cancelled; the work done so far is saved", "run the same build again to resume")


@dataclass
class BuildResult:
    path: Path
    passages: int
    langs: list[str]
    generated_queries: int
    model_calls: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _acquire_lock(out: Path):
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / fmt.LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BuildLockedError(
            f"{out}: another build is writing to this index folder",
            "wait for it to finish, or stop it (it resumes later); searches on the last complete index keep working",
        ) from None
    return lock


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _read_existing_manifest(out: Path) -> dict[str, Any] | None:
    path = out / fmt.MANIFEST
    if not path.exists():
        return None
    try:
        return fmt.validate_manifest(out, json.loads(path.read_text(encoding="utf-8")))
    except Exception:
        return None  # a damaged or foreign manifest: build afresh, never reuse from it


def build_index(
    config: BuildConfig,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    encoder: Any = None,
    generator: Any = None,
) -> BuildResult:
    """Build (or resume, or cheaply re-parameterise) the index described by ``config``.

    ``encoder`` / ``generator`` may be preloaded model objects (the app reuses its
    own); otherwise they are loaded only when some work actually needs them.
    """
    from ..io.corpus import read_corpus

    rep = _Reporter(progress, cancel)
    try:
        lock = _acquire_lock(config.out)
        try:
            return _build_locked(config, rep, encoder, generator, read_corpus)
        finally:
            lock.release()
    except DiskFullError as exc:
        exc.hint = exc.hint or _DISK_FULL_HINT
        raise
    except OSError as exc:
        # ENOSPC outside the atomic writers (mkdir, hard-link copies, the lock file).
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            where = exc.filename or config.out
            raise DiskFullError(f"{where}: disk full", _DISK_FULL_HINT) from None
        raise


_DISK_FULL_HINT = "free some space and run the same build again: it resumes from the work already saved"


def _build_locked(config: BuildConfig, rep: _Reporter, encoder: Any, generator: Any, read_corpus) -> BuildResult:
    out = config.out
    if not config.corpus.exists():
        raise InputError(config.corpus, None, "no such file")
    passages = read_corpus(config.corpus)
    if not passages:
        raise InputError(config.corpus, None, "the corpus has no passages")
    corpus_sha = _sha256(config.corpus)
    docids = [p.docid for p in passages]

    imported: dict[str, dict[str, list[str]]] | None = None
    import_sha = None
    if config.import_generated is not None:
        from ..io.generated import read_generated

        if not config.import_generated.exists():
            raise InputError(config.import_generated, None, "no such file")
        imported = read_generated(config.import_generated, known_docids=set(docids))
        import_sha = _sha256(config.import_generated)

    # Which languages get generated queries.
    if imported is not None:
        file_langs = sorted({l for row in imported.values() for l in row})
        langs = list(config.langs) if config.langs is not None else file_langs
        source = "import"
    elif config.generator is not None and config.queries_per_lang > 0:
        langs = list(config.langs) if config.langs is not None else list(PAPER_LANGUAGES)
        source = "model"
    else:
        langs, source = [], "none"
    for lang in langs:
        language_name(lang)  # validated in config; raises KeyError only on a programming error
        fmt.check_lang_filename(lang, config.import_generated or config.corpus)

    enc_settings = {
        "encoder": config.encoder,
        "max_passage_length": config.max_passage_length,
        "max_query_length": config.max_query_length,
        "dtype": config.dtype,
    }
    passage_key = _key({"corpus": corpus_sha, "chunk": config.chunk_size, **enc_settings, "stage": "encode"})
    gen_settings = {
        "generator": config.generator,
        "n": config.queries_per_lang,
        "seed": config.seed,
        "top_k": config.top_k,
        "top_p": config.top_p,
        "temperature": config.temperature,
        "max_new_tokens": config.max_new_tokens,
    }
    def gen_key(lang: str) -> str:
        if source == "import":
            return _key({"corpus": corpus_sha, "chunk": config.chunk_size, "import": import_sha, "lang": lang})
        return _key({"corpus": corpus_sha, "chunk": config.chunk_size, **gen_settings, "lang": lang})

    old = _read_existing_manifest(out)
    if old is not None:
        # Files reused from the last index are hard-linked and re-recorded in the new
        # manifest: check them first, or a rebuild would bless a damaged file.
        from .store import verify_files

        try:
            verify_files(out, old, full=True)
        except (IndexError_, OSError) as exc:
            msg = exc.one_line() if isinstance(exc, XQGError) else str(exc)
            rep("encode", 0, 0, "files", f"the existing index is damaged, so nothing is reused from it: {msg}", level="warning")
            old = None
    old_keys = (old or {}).get("stage_keys", {})
    # Languages asked for now are the search default; languages an earlier build
    # already generated with the same settings are kept too (dropping them would
    # throw away model work that a later build might want back).
    search_langs = list(langs)
    if old is not None:
        for lang in old["generation"].get("langs", []):
            qk = _key({"gen": gen_key(lang), **enc_settings, "stage": "qenc"})
            if lang not in langs and old_keys.get("qenc", {}).get(lang) == qk:
                langs.append(lang)
    gen_keys = {lang: gen_key(lang) for lang in langs}
    qenc_keys = {lang: _key({"gen": gen_keys[lang], **enc_settings, "stage": "qenc"}) for lang in langs}
    old_data = fmt.safe_join(out, old["data_dir"]) if old else None
    reuse_passages = bool(old) and old_keys.get("passages") == passage_key
    reuse_langs = {lang for lang in langs if old and old_keys.get("qenc", {}).get(lang) == qenc_keys[lang]}

    work = out / fmt.WORK_DIR
    result = BuildResult(out, len(passages), langs, 0)
    chunks = _chunks(len(passages), config.chunk_size)

    # Model-free path: everything the new manifest needs already exists.
    need_models = not reuse_passages or any(lang not in reuse_langs for lang in langs)
    enc_state: dict[str, Any] = {"obj": encoder}
    gen_state: dict[str, Any] = {"obj": generator}

    def get_encoder():
        if enc_state["obj"] is None:
            from ..models.encoder import Encoder

            rep("encode", 0, 0, "passages", f"loading encoder {config.encoder}")
            enc_state["obj"] = Encoder.load(
                config.encoder,
                device=config.device,
                max_query_length=config.max_query_length,
                max_passage_length=config.max_passage_length,
                batch_size=config.batch_size,
            )
        return enc_state["obj"]

    def get_generator():
        if gen_state["obj"] is None:
            from ..models.generator import QueryGenerator

            rep("generate", 0, 0, "queries", f"loading generator {config.generator}")
            gen_state["obj"] = QueryGenerator.load(
                config.generator,
                device=config.device,
                top_k=config.top_k,
                top_p=config.top_p,
                temperature=config.temperature,
                max_new_tokens=config.max_new_tokens,
                batch_size=config.gen_batch_size,
            )
        return gen_state["obj"]

    progress_path = work / fmt.PROGRESS

    def write_progress(stage: str, extra: dict[str, Any]) -> None:
        atomic_write_json(
            progress_path,
            {
                "stage": stage,
                "corpus": str(config.corpus),
                "passages": len(passages),
                "chunks": len(chunks),
                "langs": langs,
                "updated": time.time(),
                **extra,
            },
        )

    if need_models:
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_json(work / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()})

    # ---- stage 1: passage vectors -------------------------------------------------
    enc_dir = work / f"encode-{passage_key}"
    if not reuse_passages:
        rep.start("encode")
        done = sum(1 for i, _ in enumerate(chunks) if (enc_dir / f"{i:06d}.npy").exists())
        rep("encode", sum(b - a for i, (a, b) in enumerate(chunks) if (enc_dir / f"{i:06d}.npy").exists()), len(passages), "passages")
        for i, (a, b) in enumerate(chunks):
            path = enc_dir / f"{i:06d}.npy"
            if path.exists():
                continue
            rep.check_cancel()
            vecs = get_encoder().encode_passages(passages[a:b])
            save_npy_atomic(path, np.ascontiguousarray(vecs, dtype=config.dtype))
            done += 1
            write_progress("encode", {"encode_chunks_done": done})
            rep("encode", b, len(passages), "passages")
        rep.finish("encode")
    else:
        result.reused.append("passage vectors")

    # ---- stage 2: generated query texts ------------------------------------------
    texts: dict[str, list[list[str]]] = {}
    old_index = None
    if reuse_langs:
        from .store import open_index

        old_index = open_index(out, verify=False)
        for lang in reuse_langs:
            texts[lang] = [old_index.generated(r).get(lang, []) for r in range(len(passages))]
            result.reused.append(f"{lang} queries")
    todo_langs = [lang for lang in langs if lang not in reuse_langs]
    if todo_langs and source == "import":
        assert imported is not None
        for lang in todo_langs:
            texts[lang] = [[q for q in imported.get(d, {}).get(lang, []) if q.strip()] for d in docids]
    elif todo_langs and source == "model":
        rep.start("generate")
        total = len(passages) * len(todo_langs) * config.queries_per_lang
        gen_dirs = {lang: work / f"generate-{gen_keys[lang]}" for lang in todo_langs}
        done_q = sum(
            (b - a) * config.queries_per_lang
            for lang in todo_langs
            for i, (a, b) in enumerate(chunks)
            if (gen_dirs[lang] / f"{i:06d}.json").exists()
        )
        rep("generate", done_q, total, "queries")
        for i, (a, b) in enumerate(chunks):
            missing = [lang for lang in todo_langs if not (gen_dirs[lang] / f"{i:06d}.json").exists()]
            for lang in missing:
                # One language per call: the generator seeds per (seed, chunk, lang),
                # so resumed and uninterrupted builds agree whatever was missing.
                rep.check_cancel()
                outs = get_generator().generate(passages[a:b], [lang], config.queries_per_lang, config.seed, chunk_key="")
                rows = [[q.strip() for q in o.get(lang, []) if q and q.strip()] for o in outs]
                atomic_write_json(gen_dirs[lang] / f"{i:06d}.json", rows)
                done_q += (b - a) * config.queries_per_lang
                write_progress("generate", {"generate_chunk": i, "lang": lang})
                rep("generate", done_q, total, "queries")
        for lang in todo_langs:
            rows_all: list[list[str]] = []
            for i, _ in enumerate(chunks):
                rows_all.extend(_work_json(gen_dirs[lang] / f"{i:06d}.json", chunks[i][1] - chunks[i][0]))
            texts[lang] = rows_all
        rep.finish("generate")

    # ---- stage 3: query vectors ---------------------------------------------------
    if todo_langs:
        rep.start("encode-queries")
        total = sum(len(q) for lang in todo_langs for q in texts[lang])
        done_q = 0
        for lang in todo_langs:
            qdir = work / f"encode-queries-{qenc_keys[lang]}"
            for i, (a, b) in enumerate(chunks):
                path = qdir / f"{i:06d}.npy"
                rows = texts[lang][a:b]
                nq = sum(len(r) for r in rows)
                if not path.exists():
                    rep.check_cancel()
                    flat = [q for r in rows for q in r]
                    enc = get_encoder()
                    vecs = enc.encode_queries(flat) if flat else np.zeros((0, _dim(enc)), dtype=np.float32)
                    nmax = max((len(r) for r in rows), default=0)
                    block = np.zeros((b - a, nmax, vecs.shape[1] if vecs.size else _dim(enc)), dtype=config.dtype)
                    pos = 0
                    for j, r in enumerate(rows):
                        block[j, : len(r)] = vecs[pos : pos + len(r)]
                        pos += len(r)
                    save_npy_atomic(path, block)
                    write_progress("encode-queries", {"lang": lang, "chunk": i})
                done_q += nq
                rep("encode-queries", done_q, total, "queries")
        rep.finish("encode-queries")

    # ---- stage 4+5: assemble a new data folder, fuse, swap the manifest ------------
    rep.start("write")
    rep("write", 0, 1, "files", "assembling index files")
    generation = int((old or {}).get("generation_number", 0)) + 1
    data_name = fmt.data_dir_name(generation)
    tmp = out / f".{data_name}.tmp"
    _remove(tmp)
    (tmp / fmt.QUERY_VECTORS_DIR).mkdir(parents=True)

    if reuse_passages:
        assert old_data is not None
        _link_or_copy(old_data / fmt.PASSAGE_VECTORS, tmp / fmt.PASSAGE_VECTORS)
        P = load_npy(tmp / fmt.PASSAGE_VECTORS, mmap=True)
    else:
        parts = [_work_npy(enc_dir / f"{i:06d}.npy", b - a, 2) for i, (a, b) in enumerate(chunks)]
        P = np.concatenate(parts, axis=0).astype(config.dtype, copy=False)
        save_npy_atomic(tmp / fmt.PASSAGE_VECTORS, P)
    dim = int(P.shape[1])
    atomic_write_text(
        tmp / fmt.PASSAGES,
        "".join(json.dumps({"docid": p.docid, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n" for p in passages),
    )

    counts = np.zeros((len(passages), len(langs)), dtype=np.int32)
    qvecs: dict[str, np.ndarray] = {}
    for j, lang in enumerate(langs):
        counts[:, j] = [len(r) for r in texts[lang]]
        dst = tmp / fmt.QUERY_VECTORS_DIR / f"{lang}.npy"
        if lang in reuse_langs:
            assert old_data is not None
            _link_or_copy(old_data / fmt.QUERY_VECTORS_DIR / f"{lang}.npy", dst)
        else:
            qdir = work / f"encode-queries-{qenc_keys[lang]}"
            parts = [_work_npy(qdir / f"{i:06d}.npy", b - a, 3, dim) for i, (a, b) in enumerate(chunks)]
            nmax = max((p.shape[1] for p in parts), default=0)
            full = np.zeros((len(passages), nmax, dim), dtype=config.dtype)
            for (a, b), part in zip(chunks, parts):
                if part.shape[1]:
                    full[a:b, : part.shape[1]] = part
            save_npy_atomic(dst, full)
        qvecs[lang] = load_npy(dst, mmap=True)
        result.generated_queries += int(counts[:, j].sum())
    if langs:
        save_npy_atomic(tmp / fmt.QUERY_COUNTS, counts)
        atomic_write_text(
            tmp / fmt.GENERATED,
            "".join(
                json.dumps({"docid": d, "generated_queries": {lang: texts[lang][i] for lang in langs}}, ensure_ascii=False) + "\n"
                for i, d in enumerate(docids)
            ),
        )
    rep.finish("write")

    # Search defaults: alpha and fusion depend on the encoder (see default_fusion).
    enc_meta = enc_state["obj"] if need_models else None  # untouched when nothing was computed
    normalizes = _encoder_normalizes(config, enc_meta, old)
    d_fusion, d_alpha = default_fusion(normalizes)
    fusion = config.fusion or d_fusion
    alpha = d_alpha if config.alpha is None else float(config.alpha)
    spec = FusionSpec(alpha=alpha, fusion=fusion, langs=tuple(search_langs))
    rep.start("fuse")
    if langs and fusion == "sum" and unequal_counts(counts):
        rep("fuse", 0, 1, "matrix", "passages have different numbers of generated queries: `sum` fusion favours passages with more queries; consider --fusion mean", level="warning")
    aggregates = {lang: language_aggregate(qvecs[lang], counts[:, j], None, fusion) for j, lang in enumerate(langs)}
    fused = augmented_matrix(P, aggregates, spec)
    save_npy_atomic(tmp / "fused_vectors.npy", fused.astype(config.dtype))
    del aggregates, fused, qvecs, P
    rep.finish("fuse")

    rep.start("write")
    files = {}
    for path in sorted(tmp.rglob("*")):
        if path.is_file():
            files[f"{data_name}/{path.relative_to(tmp).as_posix()}"] = fmt.file_record(path)
    final = out / data_name
    _remove(final)
    os.replace(tmp, final)
    fmt.fsync_dir(out)

    enc_fp = _encoder_fingerprint(config, enc_meta, old, reuse_passages)
    gen_fp = None
    if source == "model":
        gobj = gen_state["obj"] if need_models else None
        gen_fp = gobj.fingerprint() if gobj is not None and hasattr(gobj, "fingerprint") else (old or {}).get("generator")
    manifest = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generation_number": generation,
        "data_dir": data_name,
        "dtype": config.dtype,
        "encoder": enc_fp,
        "generator": gen_fp,
        "generation": {
            "source": source,
            "langs": langs,
            "queries_per_lang": config.queries_per_lang if source == "model" else int(counts.max()) if counts.size else 0,
            "seed": config.seed,
            "sampling": {k: gen_settings[k] for k in ("top_k", "top_p", "temperature", "max_new_tokens")},
            "spec": config.generator,
            "equal_counts": not unequal_counts(counts),
        },
        "search_defaults": {"alpha": alpha, "fusion": fusion, "langs": search_langs},
        "counts": {
            "passages": len(passages),
            "dim": dim,
            "generated_queries": result.generated_queries,
            "per_lang": {lang: int(counts[:, j].sum()) for j, lang in enumerate(langs)},
        },
        "inputs": {
            "corpus": {"path": str(config.corpus), "sha256": corpus_sha},
            "import_generated": {"path": str(config.import_generated), "sha256": import_sha} if import_sha else None,
        },
        "stage_keys": {"passages": passage_key, "qenc": qenc_keys},
        "files": files,
    }
    atomic_write_json(out / fmt.MANIFEST, manifest)
    fmt.fsync_dir(out)
    # Old generations and work files are no longer referenced. Readers that still
    # hold them open keep working (unlinked files live until closed).
    for child in out.iterdir():
        if child.is_dir() and child.name.startswith("data-") and child.name != data_name:
            if child.is_symlink():  # not ours to follow: drop the link only
                with contextlib.suppress(OSError):
                    child.unlink()
            else:
                shutil.rmtree(child, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    _remove_stale_temp(out)
    rep.finish("write")
    rep("write", 1, 1, "files", f"index complete: {len(passages)} passages, {result.generated_queries} generated queries")

    result.model_calls = {
        "encoder": int(getattr(enc_state["obj"], "calls", 0) or 0) if need_models else 0,
        "generator": int(getattr(gen_state["obj"], "calls", 0) or 0) if need_models else 0,
    }
    result.stage_seconds = dict(rep.stage_seconds)
    result.warnings = list(rep.warnings)
    return result


def _damaged_work(path: Path, problem: str) -> IndexError_:
    # Work files are written atomically, so damage means a disk fault or a hand edit.
    return IndexError_(f"{path}: damaged work file of an unfinished build ({problem})",
                       "delete that file and run the same build again: only its chunk is computed again")


def _work_npy(path: Path, rows: int, ndim: int, dim: int | None = None) -> np.ndarray:
    """A saved chunk of vectors, checked against the chunk it stands for."""
    try:
        arr = load_npy(path)
    except InputError as exc:
        raise _damaged_work(path, exc.problem) from None
    if arr.ndim != ndim or arr.shape[0] != rows or (dim is not None and arr.shape[-1] != dim) or arr.dtype.kind != "f":
        raise _damaged_work(path, f"shape {arr.shape} {arr.dtype}, expected {rows} rows of {ndim}-d float vectors")
    return arr


def _work_json(path: Path, rows: int) -> list[list[str]]:
    """A saved chunk of generated queries: one list of strings per passage."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _damaged_work(path, type(exc).__name__) from None
    if not (isinstance(data, list) and len(data) == rows and all(isinstance(r, list) and all(isinstance(q, str) for q in r) for r in data)):
        raise _damaged_work(path, f"expected {rows} lists of queries")
    return data


def _remove(path: Path) -> None:
    """Remove a file or folder of ours; a symlink is removed itself, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _remove_stale_temp(out: Path) -> None:
    """Temporary files a killed build left in the index folder (a half-written
    manifest, a half-assembled data folder). Safe: we hold the lock, and readers
    never open these names."""
    for child in out.iterdir():
        name = child.name
        if (name.startswith(f".{fmt.MANIFEST}.") and name.endswith(".tmp")) or (name.startswith(".data-") and name.endswith(".tmp")):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()


def _dim(encoder: Any) -> int:
    return int(getattr(encoder, "dim"))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _encoder_normalizes(config: BuildConfig, enc: Any, old: dict[str, Any] | None) -> bool:
    if enc is not None:
        return bool(getattr(enc, "normalize", False))
    if old is not None and old.get("encoder", {}).get("model_id") == config.encoder:
        return bool(old["encoder"].get("normalize", False))
    return config.encoder == "offline" or "e5" in str(config.encoder).lower()


def _encoder_fingerprint(config: BuildConfig, enc: Any, old: dict[str, Any] | None, reused: bool) -> dict[str, Any]:
    if enc is not None and hasattr(enc, "fingerprint"):
        fp = dict(enc.fingerprint())
    elif reused and old is not None:
        fp = dict(old["encoder"])
    else:
        fp = {"model_id": config.encoder}
    fp.setdefault("model_id", config.encoder)
    return fp
