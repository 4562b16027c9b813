"""``xqg build --engine ray``: the build's model work as Ray Data batch inference.

The builder plans the work (:class:`~xqg_tui.index.builder.WorkPlan`); this module
computes the missing chunk files on a Ray cluster and saves them under ``work/``
exactly where the local stages would, then the builder's local assembly finds
every chunk done and loads no model. So a killed Ray build resumes from its saved
chunks (locally or on Ray), and the index is the one a local build makes:

* one Ray batch = one builder chunk, computed by the builder's own per-chunk
  function (``encode_passage_chunk``, ``generate_chunk``, ``encode_query_chunk``),
  so batch composition inside the model (sorted by length) is the same;
* one actor pool, one actor per GPU (or per CPU); each actor loads each model it
  needs once (the encoder, and the generator when queries are generated); a
  chunk's generated queries are encoded in the call that generates them;
* workers send back ``.npy`` bytes (``allow_pickle=False``) and JSON; the driver
  checks and writes them atomically as they arrive.

Workers read generated-query texts themselves (the import file by byte offsets,
or the generation chunk files), so on a multi-machine cluster the corpus, the
import file and the index folder must be on a shared filesystem.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import warnings
from typing import Any

import numpy as np

from ..errors import XQGError
from ..io.atomic import atomic_write_json, save_npy_atomic
from ..types import Passage

INSTALL_HINT = "pip install 'xqg-tui[ray]'"
_ENV_PREFIXES = ("HF_", "TRANSFORMERS_", "XQG_", "TOKENIZERS_")


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise XQGError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _quiet_ray(verbose: bool) -> None:
    """Ray's progress bars, execution banners and INFO logs drown the build's own progress."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    for name in ("enable_progress_bars", "enable_operator_progress_bars", "print_on_execution_start",
                 "enable_auto_log_stats", "verbose_stats_logs"):
        if hasattr(ctx, name):
            setattr(ctx, name, bool(verbose))
    if not verbose:
        # CRITICAL: Ray Data logs a worker's failure as ERROR with a stack; the build
        # reports it itself, in one line.
        for name in ("ray", "ray.data", "ray.serve", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def ensure_ray(config: Any) -> bool:
    """Connect to ``config.ray_address`` or start a local Ray; True when we started it
    (and so shut it down after). An already running session (a notebook, a test) is used as is."""
    ray = import_ray()
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if not config.ray_verbose:
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    if ray.is_initialized():
        _quiet_ray(config.ray_verbose)
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    kwargs: dict[str, Any] = dict(
        include_dashboard=False,
        log_to_driver=bool(config.ray_verbose),
        logging_level=logging.INFO if config.ray_verbose else logging.ERROR,
        runtime_env={"env_vars": env} if env else None,
    )
    if config.ray_address:
        kwargs["address"] = config.ray_address
    else:
        kwargs["num_cpus"] = config.ray_num_cpus
        kwargs["num_gpus"] = config.ray_num_gpus
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise XQGError(f"cannot connect to Ray at {config.ray_address}: {str(exc).splitlines()[0]}",
                       "check --address, or leave it out to start a local Ray") from None
    _quiet_ray(config.ray_verbose)
    return True


class ChunkWorker:
    """A Ray Data actor: computes one chunk per batch. It loads each model it needs
    once (lazily: an import build never loads a generator); generation and the
    encoding of its queries run in the same call, so one pool does all the work."""

    def __init__(self, config: Any, device: str, threads: int | None) -> None:
        self.config = config
        self.device = device
        self.threads = threads
        self.models: dict[str, Any] = {}
        self.calls = {"encoder": 0, "generator": 0}

    def model(self, kind: str) -> Any:
        if kind not in self.models:
            from .builder import load_encoder, load_generator

            self.models[kind] = (load_encoder if kind == "encoder" else load_generator)(self.config, device=self.device, threads=self.threads)
        return self.models[kind]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in ("task", "texts", "vectors", "encoder_calls", "generator_calls", "fingerprints", "error")}
        for raw in batch["task"]:
            before = {k: int(getattr(m, "calls", 0) or 0) for k, m in self.models.items()}
            error = ""
            try:
                texts, vectors = self._run(json.loads(str(raw)))
            except XQGError as exc:  # a user's mistake (a model that cannot load): sent back as data,
                texts, vectors = b"", b""  # since Ray's wrappers would keep only a traceback text
                error = json.dumps({"type": type(exc).__name__, "message": str(exc), "hint": exc.hint})
            out["error"].append(error)
            out["task"].append(str(raw))
            out["texts"].append(texts)
            out["vectors"].append(vectors)
            for kind in ("encoder", "generator"):
                m = self.models.get(kind)
                out[f"{kind}_calls"].append(int(getattr(m, "calls", 0) or 0) - before.get(kind, 0) if m is not None else 0)
            out["fingerprints"].append(json.dumps({k: m.fingerprint() for k, m in self.models.items() if hasattr(m, "fingerprint")}))
        return {k: np.asarray(v, dtype=np.int64 if k.endswith("_calls") else object) for k, v in out.items()}

    def _run(self, task: dict[str, Any]) -> tuple[bytes, bytes]:
        """(generated queries as JSON or b"", vectors as .npy bytes or b"")."""
        from .builder import encode_passage_chunk, encode_query_chunk, generate_chunk, read_chunk_texts

        cfg = self.config
        if task["stage"] == "encode":
            return b"", _npy(encode_passage_chunk(self.model("encoder"), _passages(task), cfg.dtype))
        texts = b""
        if "texts" in task:
            rows = read_chunk_texts(task["texts"])
        else:
            rows = generate_chunk(self.model("generator"), _passages(task), task["lang"], cfg.queries_per_lang, cfg.seed)
            texts = json.dumps(rows, ensure_ascii=False).encode("utf-8")
        vectors = _npy(encode_query_chunk(self.model("encoder"), rows, cfg.dtype)) if task.get("encode", True) else b""
        return texts, vectors


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _passages(task: dict[str, Any]) -> list[Passage]:
    return [Passage(d, t, x) for d, t, x in task["passages"]]


def _unwrap(exc: BaseException) -> XQGError:
    """The user-facing error inside Ray's wrappers (a worker's ModelError, say)."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, XQGError):
            return cur
        cur = getattr(cur, "cause", None) or cur.__cause__
    # Ray keeps a worker's exception as traceback text: its last "SomeError: ..." line.
    lines = [l.strip() for l in str(exc).splitlines() if re.match(r"\s*[\w.]+(Error|Exception|Interrupt): ", l)]
    first = lines[-1] if lines else type(exc).__name__
    return XQGError(f"the Ray build failed: {first[:300]}", "run the same build again to resume; --ray-verbose shows Ray's logs")


def _pool(config: Any, ray: Any) -> tuple[int, dict[str, Any], str, int | None]:
    """(actors, per-actor resources, device, torch threads) for one model's pool."""
    gpus = int(config.ray_num_gpus or 0)
    env_threads = os.environ.get("XQG_THREADS", "").strip()
    if gpus > 0:
        actors = config.ray_actors or gpus
        return actors, {"num_gpus": gpus / actors, "num_cpus": 1}, ("cuda" if config.device in ("auto", "cpu") else config.device), None
    cpus = int(config.ray_num_cpus or ray.cluster_resources().get("CPU", 1) or 1)
    actors = config.ray_actors or cpus
    threads = int(env_threads) if env_threads.isdigit() and int(env_threads) > 0 else max(1, cpus // actors)
    return actors, {"num_cpus": max(1, cpus // actors) if config.ray_actors else 1}, "cpu", threads


def run_plan(plan: Any, rep: Any) -> dict[str, int]:
    """Compute every missing chunk file of ``plan`` on Ray. Returns model calls by kind.

    Tasks: ``encode`` (a passage chunk), ``generate`` (a chunk in one language,
    then its queries encoded in the same call when that file is missing too) and
    ``encode-queries`` (texts already generated or imported)."""
    ray = import_ray()
    config = plan.config
    chunks, passages = plan.chunks, plan.passages

    def passage_rows(i: int) -> list[list[str]]:
        a, b = chunks[i]
        return [[p.docid, p.title, p.text] for p in passages[a:b]]

    gen_pending = set(plan.pending_generate())
    tasks: list[dict[str, Any]] = [
        {"stage": "generate", "chunk": i, "lang": lang, "passages": passage_rows(i), "encode": lang in plan.qenc_dirs and not plan.qenc_path(lang, i).exists()}
        for i, lang in sorted(gen_pending)
    ]
    tasks += [{"stage": "encode", "chunk": i, "passages": passage_rows(i)} for i in plan.pending_encode()]
    tasks += [{"stage": "encode-queries", "chunk": i, "lang": lang, "texts": plan.text_source(lang, i)}
              for i, lang in plan.pending_qenc() if (i, lang) not in gen_pending]
    calls = {"encoder": 0, "generator": 0}
    if not tasks:
        return calls
    started = ensure_ray(config)
    try:
        actors, resources, device, threads = _pool(config, ray)
        actors = max(1, min(actors, len(tasks)))
        rep.start("ray")
        rep("ray", 0, len(tasks), "chunks", f"Ray: {len(tasks)} chunks on {actors} actor(s) ({device})")
        ds = ray.data.from_items([{"task": json.dumps(t, ensure_ascii=False)} for t in tasks],
                                 override_num_blocks=min(len(tasks), 10_000))
        with warnings.catch_warnings():
            # max_restarts=0 is documented for map_batches but passed as a "remote arg",
            # which Ray's own deprecation warning would print on every build.
            warnings.simplefilter("ignore")
            ds = ds.map_batches(
                ChunkWorker,
                batch_size=1,  # one batch = one chunk: the batches inside the model match a local build
                batch_format="numpy",
                concurrency=actors,
                fn_constructor_kwargs={"config": config, "device": device, "threads": threads},
                max_restarts=0,  # a failed chunk fails the build (which resumes when run again)
                **resources,
            )
        saved_fps: set[str] = set()
        rows = iter(ds.iter_rows())
        try:
            for done, row in enumerate(rows, 1):
                task = json.loads(str(row["task"]))
                if row["error"]:
                    err = json.loads(str(row["error"]))
                    raise XQGError(err["message"], err["hint"])
                texts, vectors = bytes(row["texts"]), bytes(row["vectors"])
                if texts:  # before the vectors: a resumed build must find the queries they encode
                    atomic_write_json(plan.generate_path(task["lang"], task["chunk"]), json.loads(texts.decode("utf-8")))
                if vectors:
                    path = plan.encode_path(task["chunk"]) if task["stage"] == "encode" else plan.qenc_path(task["lang"], task["chunk"])
                    save_npy_atomic(path, np.load(io.BytesIO(vectors), allow_pickle=False))
                for kind in ("encoder", "generator"):
                    calls[kind] += int(row[f"{kind}_calls"])
                for kind, fp in json.loads(str(row["fingerprints"])).items():
                    if kind not in saved_fps:
                        plan.save_fingerprint(kind, fp)
                        saved_fps.add(kind)
                rep("ray", done, len(tasks), "chunks")
                rep.check_cancel()
        except XQGError:
            raise
        except Exception as exc:  # Ray wraps worker errors in its own exception types
            raise _unwrap(exc) from None
        finally:
            # Stops the executor and its actors now (on cancel or error), not at garbage
            # collection: a rerun in the same Ray session would wait for their CPUs.
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        rep.finish("ray")
    finally:
        if started:
            ray.shutdown()
    return calls
