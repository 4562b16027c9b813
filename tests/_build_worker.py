"""A build in its own process, for the fault tests in ``test_reliability*.py``.

Not a test module (pytest does not collect it). Run as::

    python tests/_build_worker.py SPEC.json

SPEC holds ``corpus``, ``out``, ``encoder``, ``generator`` (tiny model folders),
``log`` (an event log, appended) and optionally:

* ``kill``: ``"STAGE:K:WHEN"`` -- SIGKILL this process at the K-th event of STAGE
  in this run, ``before`` or ``after`` the event's operation;
* ``hold``: ``"STAGE:K"`` plus ``hold_dir`` -- at that event, create ``hold_dir/held``
  and wait until ``hold_dir/release`` exists (a build caught mid-way, on purpose);
* ``slow``: seconds to sleep at every event (a build that takes a while);
* ``seed``, ``alpha``: build settings.

Events are the points where a build's saved state changes: a model call
(``call``), a file or folder moved into place (``os.replace``: every atomic write
ends with one), the fusion computation and the final clean-up (``rmtree``). Each
is labelled with its build stage (encode, generate, encode-queries, fuse, write).
The log is written with O_APPEND and no buffering, so it survives SIGKILL.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("XQG_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xqg_tui.index import builder  # noqa: E402

SPEC: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
OUT = Path(SPEC["out"]).resolve()
LOG_FD = os.open(SPEC["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
KILL = SPEC.get("kill")
HOLD = SPEC.get("hold")
SLOW = float(SPEC.get("slow", 0.0))
counts: dict[str, int] = {}
current = {"stage": "setup"}


def log(**record: Any) -> None:
    os.write(LOG_FD, (json.dumps({"pid": os.getpid(), **record}) + "\n").encode())


def stage_of_path(dst: str) -> str:
    """Which build stage an ``os.replace`` destination belongs to."""
    rel = Path(dst).resolve().relative_to(OUT).as_posix() if Path(dst).resolve().is_relative_to(OUT) else dst
    if rel.startswith("work/encode-queries-"):
        return "encode-queries"
    if rel.startswith("work/encode-"):
        return "encode"
    if rel.startswith("work/generate-"):
        return "generate"
    if rel in ("work/progress.json",):
        return current["stage"]  # progress is written right after a chunk of that stage
    if rel.startswith("work/"):
        return "setup"
    if rel.endswith("fused_vectors.npy"):
        return "fuse"
    return "write"


def event(stage: str, what: str, op: Callable[[], Any], path: str = "") -> Any:
    """Run ``op`` as the next event of ``stage``: log it, and kill / hold / slow down as asked."""
    current["stage"] = stage if stage != "setup" else current["stage"]
    counts[stage] = counts.get(stage, 0) + 1
    k = counts[stage]
    if SLOW:
        time.sleep(SLOW)
    kill_when = None
    if KILL:
        k_stage, k_n, when = KILL.split(":")
        if k_stage == stage and int(k_n) == k:
            kill_when = when
    if HOLD:
        h_stage, h_n = HOLD.split(":")
        if h_stage == stage and int(h_n) == k:
            hold = Path(SPEC["hold_dir"])
            (hold / "held").write_text(what, encoding="utf-8")
            deadline = time.monotonic() + 120
            while not (hold / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
    if kill_when == "before":
        log(ev="kill", stage=stage, k=k, when="before", what=what, path=path)
        os.kill(os.getpid(), signal.SIGKILL)
    result = op()
    log(ev=what, stage=stage, k=k, path=path)
    if kill_when == "after":
        log(ev="kill", stage=stage, k=k, when="after", what=what, path=path)
        os.kill(os.getpid(), signal.SIGKILL)
    return result


_real_replace = os.replace
_real_rmtree = shutil.rmtree


def replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
    event(stage_of_path(str(dst)), "replace", lambda: _real_replace(src, dst, *a, **k), str(dst))


def rmtree(path: Any, *a: Any, **k: Any) -> None:
    p = Path(path).resolve()
    if p == OUT or OUT in p.parents:
        event("write", "rmtree", lambda: _real_rmtree(path, *a, **k), str(path))
    else:
        _real_rmtree(path, *a, **k)


os.replace = replace  # atomic writes and the data-folder swap both end in os.replace
shutil.rmtree = rmtree
_real_fuse = builder.augmented_matrix
builder.augmented_matrix = lambda *a, **k: event("fuse", "compute", lambda: _real_fuse(*a, **k))


class Logged:
    """A model whose calls are events; counts only calls that returned."""

    STAGES = {"encode_passages": "encode", "generate": "generate", "encode_queries": "encode-queries"}

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name in self.STAGES:
            return lambda *a, **k: event(self.STAGES[name], "call", lambda: value(*a, **k))
        return value


def main() -> None:
    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    log(ev="start")
    encoder = Logged(Encoder.load(SPEC["encoder"]))
    generator = Logged(QueryGenerator.load(SPEC["generator"], max_new_tokens=6))
    cfg = builder.BuildConfig(
        corpus=SPEC["corpus"],
        out=SPEC["out"],
        encoder=SPEC["encoder"],
        generator=SPEC["generator"],
        langs=["ar", "ja"],
        queries_per_lang=2,
        chunk_size=2,
        max_new_tokens=6,
        seed=int(SPEC.get("seed", 7)),
        alpha=SPEC.get("alpha"),
    )
    try:
        res = builder.build_index(cfg, encoder=encoder, generator=generator)
    except Exception as exc:  # reported to the test, which decides
        log(ev="error", type=type(exc).__name__, message=str(exc))
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        sys.exit(3)
    log(ev="done")
    print(json.dumps({"generated_queries": res.generated_queries, "reused": res.reused}))


if __name__ == "__main__":
    main()
