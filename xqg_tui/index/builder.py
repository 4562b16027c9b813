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

Scale-out: ``shard=(I, N)`` indexes only the passages :func:`shards.shard_of` puts
in shard I (a complete index whose manifest says so, for ``xqg merge``);
``engine="ray"`` computes the chunk files on Ray (``ray_engine.py``) with the same
per-chunk functions (``encode_passage_chunk``, ``generate_chunk``,
``encode_query_chunk``) before the local assembly; ``store="sums"`` keeps
per-language sums of the query vectors instead of every vector. Imported queries
are streamed (``io.generated.scan_generated``) and the big matrices are written
chunk by chunk, so memory follows the corpus, not the import file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import BuildLockedError, DiskFullError, IndexError_, InputError, XQGError
from ..io.atomic import atomic_write_json, is_disk_full, load_npy, save_npy_atomic
from ..io.generated import GeneratedScan, scan_generated
from ..languages import PAPER_LANGUAGES, is_known, language_name, normalize_code
from ..types import Passage
from . import format as fmt
from .fusion import FusionSpec, augmented_matrix, language_aggregate, unequal_counts
from .shards import DocidSet, docid_hash, parse_shard

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
    shard: tuple[int, int] | str | None = None  # (I, N) or "I/N": build shard I of N (split by docid)
    store: str = "full"  # full: every query vector; sums: per-language sums + counts only
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray
    ray_num_cpus: int | None = None  # CPUs of the local Ray (None: all)
    ray_num_gpus: int = 0  # GPUs to use: one model actor per GPU
    ray_actors: int | None = None  # actors per stage (default: GPUs, else the CPUs)
    ray_verbose: bool = False  # Ray's own logs and progress bars

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
        if isinstance(self.shard, str):
            self.shard = parse_shard(self.shard)
        elif self.shard is not None:
            self.shard = parse_shard(f"{self.shard[0]}/{self.shard[1]}")
        if self.store not in fmt.STORES:
            raise XQGError(f"--store must be one of {', '.join(fmt.STORES)}, not {self.store!r}")
        if self.engine not in ("local", "ray"):
            raise XQGError(f"--engine must be local or ray, not {self.engine!r}")
        if self.ray_num_gpus < 0 or (self.ray_num_cpus is not None and self.ray_num_cpus < 1) or (self.ray_actors is not None and self.ray_actors < 1):
            raise XQGError("--num-gpus must be >= 0, --num-cpus and --actors >= 1")
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


def _check_input_file(path: Path) -> None:
    """A build reads its inputs more than once (a checksum pass, then the data; again on
    resume), which a pipe cannot give: say so instead of failing on the second read."""
    if not path.exists():
        raise InputError(path, None, "no such file")
    if path.is_dir():
        raise InputError(path, None, "is a folder, not a file")
    if not path.is_file():
        raise InputError(path, None, "is a pipe or device, not a regular file: a build reads its input twice "
                         "and checks it again on resume", hint="save it to a file first, e.g. `cat ... > corpus.jsonl`")


def _check_target(out: Path) -> None:
    """Refuse, before anything is written, a folder that is not an index of ours."""
    foreign = fmt.foreign_entries(out)
    if foreign is None:
        return
    shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
    what = "is a file" if not out.is_dir() else f"is not an xqg index folder (it holds {shown})"
    raise XQGError(f"{out}: {what}; nothing was changed", "choose a new or empty --out folder")


def _write_work_config(config: BuildConfig) -> None:
    """``work/config.json`` marks the folder as a build of ours from its first moment,
    so a build stopped before its first manifest can be resumed (see ``fmt.foreign_entries``)."""
    work = config.out / fmt.WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()})


def _drop_if_nothing_saved(out: Path, created: bool) -> None:
    """A build that failed before saving any work leaves the folder as it found it."""
    work = out / fmt.WORK_DIR
    if not work.is_dir() or work.is_symlink():
        return
    if any(child.name != "config.json" for child in work.iterdir()):
        return  # saved chunks: kept, the same build resumes from them
    shutil.rmtree(work, ignore_errors=True)
    if created and not (out / fmt.MANIFEST).exists():
        with contextlib.suppress(OSError):
            (out / fmt.LOCK).unlink()
            out.rmdir()


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


# ---- per-chunk work: the one definition the local loop and Ray workers share --------
# Each function computes exactly one work file from exactly one chunk, so a chunk
# gets the same batches (sorted by length inside the model call) wherever it runs.


def load_encoder(config: BuildConfig, device: str | None = None, threads: int | None = None) -> Any:
    from ..models.encoder import Encoder

    return Encoder.load(
        config.encoder,
        device=device or config.device,
        max_query_length=config.max_query_length,
        max_passage_length=config.max_passage_length,
        batch_size=config.batch_size,
        threads=threads,
    )


def load_generator(config: BuildConfig, device: str | None = None, threads: int | None = None) -> Any:
    from ..models.generator import QueryGenerator

    return QueryGenerator.load(
        config.generator,
        device=device or config.device,
        top_k=config.top_k,
        top_p=config.top_p,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.gen_batch_size,
        threads=threads,
    )


def encode_passage_chunk(encoder: Any, passages: list[Passage], dtype: str) -> np.ndarray:
    """(n, D) passage vectors of one chunk, in the index dtype."""
    return np.ascontiguousarray(encoder.encode_passages(list(passages)), dtype=dtype)


def generate_chunk(generator: Any, passages: list[Passage], lang: str, n: int, seed: int) -> list[list[str]]:
    """Generated queries of one chunk in one language (seeded per passage and language)."""
    outs = generator.generate(list(passages), [lang], n, seed, chunk_key="")
    return [[q.strip() for q in o.get(lang, []) if q and q.strip()] for o in outs]


def encode_query_chunk(encoder: Any, rows: list[list[str]], dtype: str) -> np.ndarray:
    """(n, NMAX_chunk, D) query vectors of one chunk in one language, zero rows past each count."""
    flat = [q for r in rows for q in r]
    dim = _dim(encoder)
    vecs = encoder.encode_queries(flat) if flat else np.zeros((0, dim), dtype=np.float32)
    nmax = max((len(r) for r in rows), default=0)
    block = np.zeros((len(rows), nmax, vecs.shape[1] if vecs.size else dim), dtype=dtype)
    pos = 0
    for j, r in enumerate(rows):
        block[j, : len(r)] = vecs[pos : pos + len(r)]
        pos += len(r)
    return block


@dataclass
class WorkPlan:
    """The model work of one build: the chunk files under ``work/``, which are saved,
    and where each chunk's input comes from. The local stages and the Ray engine
    both work from it, so they write the same files under the same names."""

    config: BuildConfig
    work: Path
    passages: list[Passage]
    chunks: list[tuple[int, int]]
    source: str  # model | import | none
    enc_dir: Path | None  # None: passage vectors reused from the previous index
    gen_dirs: dict[str, Path]  # languages to generate
    qenc_dirs: dict[str, Path]  # languages whose queries to encode
    scan: GeneratedScan | None
    encoder_key: str
    generator_key: str

    def encode_path(self, i: int) -> Path:
        assert self.enc_dir is not None
        return self.enc_dir / f"{i:06d}.npy"

    def generate_path(self, lang: str, i: int) -> Path:
        return self.gen_dirs[lang] / f"{i:06d}.json"

    def qenc_path(self, lang: str, i: int) -> Path:
        return self.qenc_dirs[lang] / f"{i:06d}.npy"

    def pending_encode(self) -> list[int]:
        if self.enc_dir is None:
            return []
        return [i for i in range(len(self.chunks)) if not self.encode_path(i).exists()]

    def pending_generate(self) -> list[tuple[int, str]]:
        return [(i, lang) for i in range(len(self.chunks)) for lang in self.gen_dirs if not self.generate_path(lang, i).exists()]

    def pending_qenc(self) -> list[tuple[int, str]]:
        return [(i, lang) for i in range(len(self.chunks)) for lang in self.qenc_dirs if not self.qenc_path(lang, i).exists()]

    def has_pending(self) -> bool:
        return bool(self.pending_encode() or self.pending_generate() or self.pending_qenc())

    def text_source(self, lang: str, i: int) -> dict[str, Any]:
        """Where chunk ``i``'s queries in ``lang`` are read from (JSON-able, for a worker)."""
        a, b = self.chunks[i]
        if self.source == "import":
            assert self.scan is not None
            return {"kind": "import", "lang": lang, "rows": self.scan.chunk(a, b)}
        return {"kind": "work", "path": str(self.generate_path(lang, i)), "rows": b - a}

    def chunk_texts(self, lang: str, i: int) -> list[list[str]]:
        return read_chunk_texts(self.text_source(lang, i))

    def chunk_texts_by_lang(self, langs: list[str], i: int) -> dict[str, list[list[str]]]:
        """Chunk ``i``'s queries in each of ``langs`` (an imported chunk is read once)."""
        if self.source == "import":
            assert self.scan is not None
            a, b = self.chunks[i]
            rows = self.scan.read_rows(range(a, b))
            return {lang: [list(r.get(lang, [])) for r in rows] for lang in langs}
        return {lang: self.chunk_texts(lang, i) for lang in langs}

    # Fingerprints of the models that made the work files: a build resumed (or run by
    # Ray workers) records the same encoder in its manifest as an uninterrupted one.
    def _fp_path(self, kind: str) -> Path:
        return self.work / f"{kind}-{self.encoder_key if kind == 'encoder' else self.generator_key}.json"

    def save_fingerprint(self, kind: str, model_or_fp: Any) -> None:
        fp = model_or_fp.fingerprint() if hasattr(model_or_fp, "fingerprint") else model_or_fp
        if isinstance(fp, dict):
            self.work.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self._fp_path(kind), fp)

    def load_fingerprint(self, kind: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._fp_path(kind).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def read_chunk_texts(src: dict[str, Any]) -> list[list[str]]:
    """One chunk's queries in one language, from :meth:`WorkPlan.text_source`."""
    if src["kind"] == "import":
        scan = GeneratedScan.from_chunk(src["rows"])
        lang = src["lang"]
        return [list(row.get(lang, [])) for row in scan.read_rows(range(len(scan.docids)))]
    return _work_json(Path(src["path"]), int(src["rows"]))


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
    for source in (config.corpus, config.import_generated):
        if source is not None:
            _check_input_file(source)
    _check_target(config.out)
    created = not config.out.exists()
    try:
        lock = _acquire_lock(config.out)
        try:
            _write_work_config(config)
            return _build_locked(config, rep, encoder, generator, read_corpus)
        except BaseException:
            # Staging files cost space and are rebuilt from the saved work on the next run.
            with contextlib.suppress(OSError):
                _remove_stale_temp(config.out)
            _drop_if_nothing_saved(config.out, created)
            raise
        finally:
            lock.release()
    except DiskFullError as exc:
        exc.hint = exc.hint or _DISK_FULL_HINT
        raise
    except OSError as exc:
        # ENOSPC outside the atomic writers (mkdir, hard-link copies, the lock file).
        if is_disk_full(exc):
            where = exc.filename or config.out
            raise DiskFullError(f"{where}: disk full", _DISK_FULL_HINT) from None
        raise


_DISK_FULL_HINT = "free some space and run the same build again: it resumes from the work already saved"


def _build_locked(config: BuildConfig, rep: _Reporter, encoder: Any, generator: Any, read_corpus) -> BuildResult:
    out = config.out
    if not config.corpus.exists():
        raise InputError(config.corpus, None, "no such file")
    passages, corpus_total, all_docids = _read_passages(config, read_corpus)
    corpus_sha = _sha256(config.corpus)
    docids = [p.docid for p in passages]
    row_of = {d: i for i, d in enumerate(docids)}
    work = out / fmt.WORK_DIR

    scan: GeneratedScan | None = None
    import_sha = None
    if config.import_generated is not None:
        if not config.import_generated.exists():
            raise InputError(config.import_generated, None, "no such file")
        # Streamed in two passes (see io/generated.py): memory never grows with the file.
        scan = scan_generated(config.import_generated, row_of, all_docids, spool=work / "import-spool.jsonl")
        import_sha = scan.sha256

    # Which languages get generated queries.
    if scan is not None:
        langs = list(config.langs) if config.langs is not None else scan.langs
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
    # A shard has other passages in its chunks: its work never mixes with the whole
    # corpus's (unsharded keys are unchanged, so existing indexes are still reused).
    shard_tag = {"shard": list(config.shard)} if config.shard is not None else {}
    passage_key = _key({"corpus": corpus_sha, "chunk": config.chunk_size, **shard_tag, **enc_settings, "stage": "encode"})
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
            return _key({"corpus": corpus_sha, "chunk": config.chunk_size, **shard_tag, "import": import_sha, "lang": lang})
        return _key({"corpus": corpus_sha, "chunk": config.chunk_size, **shard_tag, **gen_settings, "lang": lang})

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
    old_store = (old or {}).get("store", "full")
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
    # Sums derive from full vectors without a model; full vectors never from sums.
    store_ok = old_store == config.store or (old_store == "full" and config.store == "sums")
    reuse_langs = {lang for lang in langs if old and store_ok and old_keys.get("qenc", {}).get(lang) == qenc_keys[lang]}
    if langs and old is not None and not store_ok and any(old_keys.get("qenc", {}).get(l) == qenc_keys[l] for l in langs):
        rep("encode", 0, 0, "files", "the existing index keeps only query sums (--store sums): its queries are encoded again", level="warning")

    result = BuildResult(out, len(passages), langs, 0)
    chunks = _chunks(len(passages), config.chunk_size)
    todo_langs = [lang for lang in langs if lang not in reuse_langs]
    plan = WorkPlan(
        config=config,
        work=work,
        passages=passages,
        chunks=chunks,
        source=source,
        enc_dir=None if reuse_passages else work / f"encode-{passage_key}",
        gen_dirs={lang: work / f"generate-{gen_keys[lang]}" for lang in todo_langs} if source == "model" else {},
        qenc_dirs={lang: work / f"encode-queries-{qenc_keys[lang]}" for lang in todo_langs},
        scan=scan,
        encoder_key=_key(enc_settings),
        generator_key=_key(gen_settings),
    )

    # Model-free path: everything the new manifest needs already exists.
    need_models = not reuse_passages or bool(todo_langs)
    enc_state: dict[str, Any] = {"obj": encoder}
    gen_state: dict[str, Any] = {"obj": generator}

    def get_encoder():
        if enc_state["obj"] is None:
            rep("encode", 0, 0, "passages", f"loading encoder {config.encoder}")
            enc_state["obj"] = load_encoder(config)
            plan.save_fingerprint("encoder", enc_state["obj"])
        return enc_state["obj"]

    def get_generator():
        if gen_state["obj"] is None:
            rep("generate", 0, 0, "queries", f"loading generator {config.generator}")
            gen_state["obj"] = load_generator(config)
            plan.save_fingerprint("generator", gen_state["obj"])
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

    ray_calls = {"encoder": 0, "generator": 0}
    if need_models:
        _write_work_config(config)
        if config.engine == "ray" and plan.has_pending():
            from .ray_engine import run_plan

            # Ray computes the missing chunk files; the stages below then find them all
            # saved and load no model (and a killed Ray build resumes like a local one).
            ray_calls = run_plan(plan, rep)

    # ---- stage 1: passage vectors -------------------------------------------------
    if plan.enc_dir is not None:
        rep.start("encode")
        pending = plan.pending_encode()
        done = len(chunks) - len(pending)
        rep("encode", sum(b - a for i, (a, b) in enumerate(chunks) if i not in set(pending)), len(passages), "passages")
        for i in pending:
            a, b = chunks[i]
            rep.check_cancel()
            save_npy_atomic(plan.encode_path(i), encode_passage_chunk(get_encoder(), passages[a:b], config.dtype))
            done += 1
            write_progress("encode", {"encode_chunks_done": done})
            rep("encode", b, len(passages), "passages")
        rep.finish("encode")
    else:
        result.reused.append("passage vectors")

    # ---- stage 2: generated query texts ------------------------------------------
    old_index = None
    if reuse_langs:
        from .store import open_index

        old_index = open_index(out, verify=False)
        for lang in langs:
            if lang in reuse_langs:
                result.reused.append(f"{lang} queries")
    if plan.gen_dirs:
        rep.start("generate")
        total = len(passages) * len(plan.gen_dirs) * config.queries_per_lang
        pending_gen = plan.pending_generate()
        done_q = total - sum((chunks[i][1] - chunks[i][0]) * config.queries_per_lang for i, _ in pending_gen)
        rep("generate", done_q, total, "queries")
        for i, lang in pending_gen:
            a, b = chunks[i]
            # One language per call: the generator seeds per (seed, chunk, lang),
            # so resumed and uninterrupted builds agree whatever was missing.
            rep.check_cancel()
            rows = generate_chunk(get_generator(), passages[a:b], lang, config.queries_per_lang, config.seed)
            atomic_write_json(plan.generate_path(lang, i), rows)
            done_q += (b - a) * config.queries_per_lang
            write_progress("generate", {"generate_chunk": i, "lang": lang})
            rep("generate", done_q, total, "queries")
        rep.finish("generate")

    # Per-passage query counts of every language (small: N x L integers).
    counts = np.zeros((len(passages), len(langs)), dtype=np.int32)
    for j, lang in enumerate(langs):
        if lang in reuse_langs:
            assert old_index is not None
            counts[:, j] = old_index.query_counts[lang]
        elif scan is not None:
            counts[:, j] = scan.counts.get(lang, 0)
        else:
            for i, (a, b) in enumerate(chunks):
                counts[a:b, j] = [len(r) for r in plan.chunk_texts(lang, i)]

    # ---- stage 3: query vectors ---------------------------------------------------
    if todo_langs:
        rep.start("encode-queries")
        total = int(sum(counts[:, langs.index(lang)].sum() for lang in todo_langs))
        done_q = 0
        for i, (a, b) in enumerate(chunks):
            for lang in todo_langs:
                path = plan.qenc_path(lang, i)
                if not path.exists():
                    rep.check_cancel()
                    save_npy_atomic(path, encode_query_chunk(get_encoder(), plan.chunk_texts(lang, i), config.dtype))
                    write_progress("encode-queries", {"lang": lang, "chunk": i})
                done_q += int(counts[a:b, langs.index(lang)].sum())
                rep("encode-queries", done_q, total, "queries")
        rep.finish("encode-queries")

    # ---- stage 4+5: assemble a new data folder, fuse, swap the manifest ------------
    rep.start("write")
    rep("write", 0, 1, "files", "assembling index files")
    generation = int((old or {}).get("generation_number", 0)) + 1
    data_name = fmt.data_dir_name(generation)
    tmp = out / f".{data_name}.tmp"
    _remove(tmp)
    qdir_name = fmt.QUERY_SUMS_DIR if config.store == "sums" else fmt.QUERY_VECTORS_DIR
    (tmp / qdir_name).mkdir(parents=True)

    # Big matrices are streamed to their files a chunk at a time (never held whole).
    if reuse_passages:
        assert old_data is not None
        _link_or_copy(old_data / fmt.PASSAGE_VECTORS, tmp / fmt.PASSAGE_VECTORS)
    else:
        assert plan.enc_dir is not None
        pdim = int(_work_npy(plan.encode_path(0), chunks[0][1] - chunks[0][0], 2).shape[1])
        _write_npy_chunks(tmp / fmt.PASSAGE_VECTORS, (len(passages), pdim), config.dtype,
                          (_work_npy(plan.encode_path(i), b - a, 2, pdim) for i, (a, b) in enumerate(chunks)))
    P = load_npy(tmp / fmt.PASSAGE_VECTORS, mmap=True)
    dim = int(P.shape[1])
    _write_lines(
        tmp / fmt.PASSAGES,
        (json.dumps({"docid": p.docid, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n" for p in passages),
    )

    qstore: dict[str, np.ndarray] = {}  # full: (N, NMAX, D) vectors; sums: (N, D) sums
    for j, lang in enumerate(langs):
        dst = tmp / qdir_name / f"{lang}.npy"
        if lang in reuse_langs:
            assert old_data is not None and old_index is not None
            if old_store == config.store:
                _link_or_copy(old_data / qdir_name / f"{lang}.npy", dst)
            else:  # full -> sums: derived from the stored vectors, no model
                sums = language_aggregate(old_index.query_vectors[lang], counts[:, j], None, "sum")
                save_npy_atomic(dst, sums.astype(config.dtype))
        else:
            nmax = max((_work_npy(plan.qenc_path(lang, i), b - a, 3, dim).shape[1] for i, (a, b) in enumerate(chunks)), default=0)
            shape = (len(passages), dim) if config.store == "sums" else (len(passages), nmax, dim)
            _write_npy_chunks(dst, shape, config.dtype, _query_blocks(plan, lang, counts[:, j], nmax, dim))
        qstore[lang] = load_npy(dst, mmap=True)
        result.generated_queries += int(counts[:, j].sum())
    if langs:
        save_npy_atomic(tmp / fmt.QUERY_COUNTS, counts)
        _write_lines(tmp / fmt.GENERATED, _generated_lines(plan, langs, reuse_langs, old_index))
    rep.finish("write")

    # Search defaults: alpha and fusion depend on the encoder (see default_fusion).
    enc_meta = enc_state["obj"] if need_models else None  # untouched when nothing was computed
    enc_fp_saved = plan.load_fingerprint("encoder") if need_models else None
    normalizes = _encoder_normalizes(config, enc_meta, old, enc_fp_saved)
    d_fusion, d_alpha = default_fusion(normalizes)
    fusion = config.fusion or d_fusion
    alpha = d_alpha if config.alpha is None else float(config.alpha)
    spec = FusionSpec(alpha=alpha, fusion=fusion, langs=tuple(search_langs))
    rep.start("fuse")
    if langs and fusion == "sum" and unequal_counts(counts):
        rep("fuse", 0, 1, "matrix", "passages have different numbers of generated queries: `sum` fusion favours passages with more queries; consider --fusion mean", level="warning")
    from .store import sums_aggregate

    fused_langs = [(j, lang) for j, lang in enumerate(langs) if lang in search_langs]

    def fused_blocks() -> Iterator[np.ndarray]:
        # Row blocks of ~64 MB of float32 per matrix: memory stays flat whatever N is
        # (a 250k-passage shard peaked at 3.3 GB when this was one matrix).
        step = max(1, FUSE_BLOCK_BYTES // max(1, dim * 4))
        for a in range(0, len(passages), step):
            b = min(len(passages), a + step)
            aggregates = {
                lang: sums_aggregate(qstore[lang][a:b], counts[a:b, j], fusion) if config.store == "sums"
                else language_aggregate(qstore[lang][a:b], counts[a:b, j], None, fusion)
                for j, lang in fused_langs
            }
            yield augmented_matrix(P[a:b], aggregates, spec).astype(config.dtype)

    _write_npy_chunks(tmp / "fused_vectors.npy", (len(passages), dim), config.dtype, fused_blocks())
    del qstore, P
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

    enc_fp = _encoder_fingerprint(config, enc_meta, old, reuse_passages, enc_fp_saved)
    gen_fp = None
    if source == "model":
        gobj = gen_state["obj"] if need_models else None
        if gobj is not None and hasattr(gobj, "fingerprint"):
            gen_fp = gobj.fingerprint()
        else:
            gen_fp = (plan.load_fingerprint("generator") if need_models else None) or (old or {}).get("generator")
    manifest = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generation_number": generation,
        "data_dir": data_name,
        "dtype": config.dtype,
        "store": config.store,
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
    if config.shard is not None:
        # What `xqg merge` checks: every shard of one corpus, each exactly once.
        manifest["shard"] = {
            "index": config.shard[0],
            "count": config.shard[1],
            "corpus_sha256": corpus_sha,
            "corpus_passages": corpus_total,
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
        "encoder": ray_calls["encoder"] + (int(getattr(enc_state["obj"], "calls", 0) or 0) if need_models else 0),
        "generator": ray_calls["generator"] + (int(getattr(gen_state["obj"], "calls", 0) or 0) if need_models else 0),
    }
    result.stage_seconds = dict(rep.stage_seconds)
    result.warnings = list(rep.warnings)
    return result


def _read_passages(config: BuildConfig, read_corpus) -> tuple[list[Passage], int, DocidSet | None]:
    """The passages to index, the corpus's passage count, and (for a shard) the set
    of all the corpus's docids. A shard streams the corpus and keeps only its own
    passages (plus 8 bytes per other docid)."""
    if config.shard is None:
        passages = read_corpus(config.corpus)
        if not passages:
            raise InputError(config.corpus, None, "the corpus has no passages")
        return passages, len(passages), None
    from array import array

    from ..io.corpus import iter_corpus_with_lines

    index, count = config.shard
    hashes = array("Q")
    seen: dict[str, int] = {}
    out: list[Passage] = []
    for lineno, p in iter_corpus_with_lines(config.corpus):
        h = docid_hash(p.docid)
        hashes.append(h)
        if h % count != index:  # == shard_of(p.docid, count), without hashing twice
            continue
        first = seen.get(p.docid)
        if first is not None:  # a docid's copies all fall in the same shard
            raise InputError(config.corpus, lineno, f"duplicate docid {p.docid!r} (first on line {first})", field="docid")
        seen[p.docid] = lineno
        out.append(p)
    if not hashes:
        raise InputError(config.corpus, None, "the corpus has no passages")
    if not out:
        raise InputError(config.corpus, None, f"shard {index}/{count} has no passages (the corpus has {len(hashes)})",
                         hint="use fewer shards")
    return out, len(hashes), DocidSet(np.frombuffer(hashes, dtype=np.uint64))


def _generated_lines(plan: "WorkPlan", langs: list[str], reuse_langs: set[str], old_index: Any) -> Iterable[str]:
    """generated.jsonl in index order, a chunk at a time."""
    for i, (a, b) in enumerate(plan.chunks):
        per_lang = plan.chunk_texts_by_lang([lang for lang in langs if lang not in reuse_langs], i)
        for lang in reuse_langs:
            per_lang[lang] = [old_index.generated(r).get(lang, []) for r in range(a, b)]
        for k, r in enumerate(range(a, b)):
            row = {"docid": plan.passages[r].docid, "generated_queries": {lang: per_lang[lang][k] for lang in langs}}
            yield json.dumps(row, ensure_ascii=False) + "\n"


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    from ..io.atomic import atomic_open

    with atomic_open(path, "w") as fh:
        for line in lines:
            fh.write(line)


def _query_blocks(plan: "WorkPlan", lang: str, counts: np.ndarray, nmax: int, dim: int) -> Iterable[np.ndarray]:
    """A language's query vectors chunk by chunk, as stored: padded to NMAX slots, or summed."""
    for i, (a, b) in enumerate(plan.chunks):
        part = _work_npy(plan.qenc_path(lang, i), b - a, 3, dim)
        if plan.config.store == "sums":
            yield language_aggregate(part, counts[a:b], None, "sum")
        elif part.shape[1] == nmax:
            yield part
        else:
            block = np.zeros((b - a, nmax, dim), dtype=part.dtype)
            block[:, : part.shape[1]] = part
            yield block


FUSE_BLOCK_BYTES = 64 << 20  # float32 bytes per fused row block (tests lower it)


def _write_npy_chunks(path: Path, shape: tuple[int, ...], dtype: str, blocks: Iterable[np.ndarray]) -> None:
    """An .npy file of ``shape`` written atomically from consecutive row blocks (the same
    bytes as ``np.save`` of the whole array, in memory one block at a time)."""
    from ..io.atomic import atomic_open

    dt = np.dtype(dtype)
    rows = 0
    with atomic_open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": shape})
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=dt)
            rows += block.shape[0]
            fh.write(block.tobytes())
    if rows != shape[0]:  # a programming error: the blocks must cover every row
        raise AssertionError(f"{path}: wrote {rows} rows of {shape[0]}")


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


def _encoder_normalizes(config: BuildConfig, enc: Any, old: dict[str, Any] | None, saved: dict[str, Any] | None = None) -> bool:
    if enc is not None:
        return bool(getattr(enc, "normalize", False))
    if saved is not None and "normalize" in saved:
        return bool(saved["normalize"])
    if old is not None and old.get("encoder", {}).get("model_id") == config.encoder:
        return bool(old["encoder"].get("normalize", False))
    return config.encoder == "offline" or "e5" in str(config.encoder).lower()


def _encoder_fingerprint(config: BuildConfig, enc: Any, old: dict[str, Any] | None, reused: bool,
                         saved: dict[str, Any] | None = None) -> dict[str, Any]:
    if enc is not None and hasattr(enc, "fingerprint"):
        fp = dict(enc.fingerprint())
    elif saved is not None:  # loaded by an earlier run of this build, or by Ray workers
        fp = dict(saved)
    elif reused and old is not None:
        fp = dict(old["encoder"])
    else:
        fp = {"model_id": config.encoder}
    fp.setdefault("model_id", config.encoder)
    return fp
