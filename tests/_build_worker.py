"""A build in its own process, for the fault tests in ``test_reliability*.py``.

Not a test module (pytest does not collect it). Run as::

    python tests/_build_worker.py SPEC.json     # one build in this process
    python tests/_build_worker.py --serve       # spec paths on stdin, one forked build each

SPEC holds ``corpus``, ``out``, ``encoder``, ``generator`` (tiny model folders),
``log`` (an event log, appended) and optionally:

* ``kill``: ``"STAGE:K:WHEN"`` -- SIGKILL this process at the K-th event of STAGE
  in this run (or at the event that moves the file named K into place),
  ``before`` or ``after`` the event's operation;
* ``hold``: a list of ``"STAGE:K:WHEN"`` plus ``hold_dir`` -- at the J-th of these
  points, create ``hold_dir/held-J`` and wait until ``hold_dir/release-J`` exists
  (a build caught mid-way, on purpose);
* ``slow``: seconds to sleep at every event (a build that takes a while);
* ``wait_for``: a path; the build starts once it exists (the imports are done before);
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

SPEC: dict[str, Any] = {}
OUT = Path(".")
LOG_FD = -1
KILL: str | None = None
HOLD: list[str] | None = None
SLOW = 0.0
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
        # K is a count, or the name of the file the event moves into place.
        if k_stage == stage and (k_n == str(k) or (not k_n.isdigit() and Path(path).name == k_n)):
            kill_when = when
    holds = [(j, h.split(":")) for j, h in enumerate(HOLD or [])]
    holds = [(j, when) for j, (h_stage, h_n, when) in holds if h_stage == stage and (h_n == str(k) or Path(path).name == h_n)]
    for j, when in holds:
        if when == "before":
            hold(j, what)
    if kill_when == "before":
        log(ev="kill", stage=stage, k=k, when="before", what=what, path=path)
        os.kill(os.getpid(), signal.SIGKILL)
    result = op()
    log(ev=what, stage=stage, k=k, path=path)
    for j, when in holds:
        if when == "after":
            hold(j, what)
    if kill_when == "after":
        log(ev="kill", stage=stage, k=k, when="after", what=what, path=path)
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def hold(j: int, what: str) -> None:
    """Stop here until the test says so: ``hold_dir/held-J`` appears, we wait for ``release-J``."""
    folder = Path(SPEC["hold_dir"])
    (folder / f"held-{j}").write_text(what, encoding="utf-8")
    deadline = time.monotonic() + 120
    while not (folder / f"release-{j}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


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


_real_fuse = builder.augmented_matrix


def install_hooks() -> None:
    os.replace = replace  # atomic writes and the data-folder swap both end in os.replace
    shutil.rmtree = rmtree
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


def build(spec_path: str) -> int:
    """One build as described by the spec file; returns the exit status."""
    global SPEC, OUT, LOG_FD, KILL, HOLD, SLOW
    import transformers.models.bert.modeling_bert  # noqa: F401  (transformers' lazy imports, before wait_for)
    import transformers.models.mt5.modeling_mt5  # noqa: F401

    from xqg_tui.models.encoder import Encoder
    from xqg_tui.models.generator import QueryGenerator

    SPEC = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    OUT = Path(SPEC["out"]).resolve()
    LOG_FD = os.open(SPEC["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    KILL, HOLD, SLOW = SPEC.get("kill"), SPEC.get("hold"), float(SPEC.get("slow", 0.0))
    counts.clear()
    current["stage"] = "setup"
    install_hooks()
    if SPEC.get("wait_for"):  # imports done; start when the test is ready
        deadline = time.monotonic() + 120
        while not Path(SPEC["wait_for"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
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
        builder.build_index(cfg, encoder=encoder, generator=generator)
    except Exception as exc:  # reported to the test through the log
        log(ev="error", type=type(exc).__name__, message=str(exc))
        return 3
    log(ev="done")
    return 0


def serve() -> None:
    """Read spec paths from stdin, one per line; run each build in a forked child
    (the imports above are paid once) and answer with its wait status.

    The child is a separate process: SIGKILL ends it alone, with its open files
    and its lock, exactly as a killed ``xqg build``. Nothing in this parent has
    started a thread or a torch kernel (asserted), so forking is safe."""
    import threading

    import transformers.models.bert.modeling_bert  # noqa: F401  (the lazy imports, once)
    import transformers.models.mt5.modeling_mt5  # noqa: F401
    from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer  # noqa: F401

    assert threading.active_count() == 1
    print("ready", flush=True)
    for line in sys.stdin:
        spec_path = line.strip()
        if not spec_path:
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = build(spec_path)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -sig
        print(json.dumps({"rc": rc}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve()
    else:
        sys.exit(build(sys.argv[1]))
