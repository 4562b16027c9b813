"""A build killed with SIGKILL over and over resumes to the same index, bit for bit,
without repeating any model call whose result was already saved.

Each build runs in its own process (``tests/_build_worker.py``, forked from a
server that has paid the imports once) and is killed at a point chosen by a
seeded RNG among the events of one stage: a model call, a file moved into place
(the end of every atomic write), the fusion, the final clean-up; before or
after the event. 23 kills cover the five stages; the whole test takes well
under a minute on two cores.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from xqg_tui.errors import IndexError_
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl

WORKER = Path(__file__).with_name("_build_worker.py")
SEED = 20240611
# (stage, kills, largest K): K never exceeds the events that stage still has in
# the run, so every planned kill fires (asserted below).
PLAN = [("encode", 4, 3), ("generate", 5, 4), ("encode-queries", 5, 4), ("fuse", 3, 2), ("write", 4, 7)]
CHUNK_FILE = re.compile(r"work/(encode|generate|encode-queries)-[0-9a-f]+/\d{6}\.(npy|json)$")


class Worker:
    """The build server: one forked build per request, answered with its exit status."""

    def __init__(self) -> None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", XQG_THREADS="1", TOKENIZERS_PARALLELISM="false")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def run(self, spec: dict[str, Any], path: Path) -> int:
        path.write_text(json.dumps(spec), encoding="utf-8")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the build server died"
        return int(json.loads(line)["rc"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


def _runs(log: Path) -> list[list[dict[str, Any]]]:
    """The log split into runs (one per process), in order."""
    runs: list[list[dict[str, Any]]] = []
    pids: list[int] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["ev"] == "start":
            runs.append([])
            pids.append(rec["pid"])
        assert rec["pid"] == pids[-1], "runs never overlap"
        runs[-1].append(rec)
    return runs


def _rel(path: str, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def _call_accounting(runs: list[list[dict[str, Any]]], root: Path) -> tuple[Counter, Counter, Counter]:
    """Completed model calls per stage, calls lost to a kill before their result was
    saved, and how often each chunk file was saved."""
    calls: Counter = Counter()
    lost: Counter = Counter()
    saves: Counter = Counter()
    for run in runs:
        pending: str | None = None
        for rec in run:
            if rec["ev"] == "call":
                assert pending is None, "a model call whose result was never saved, followed by another"
                calls[rec["stage"]] += 1
                pending = rec["stage"]
            elif rec["ev"] == "replace" and CHUNK_FILE.search(_rel(rec["path"], root)):
                saves[_rel(rec["path"], root)] += 1
                pending = None
            elif rec["ev"] == "kill" and pending is not None:
                lost[pending] += 1
        # A finished run saved everything it computed.
        if run[-1]["ev"] == "done":
            assert pending is None
    return calls, lost, saves


def _file_digests(root: Path) -> dict[str, str]:
    """sha256 of every index file, by name inside its data folder."""
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return {rel.split("/", 1)[1]: rec["sha256"] for rel, rec in manifest["files"].items()}


@pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(__import__("signal"), "SIGKILL"), reason="needs fork and SIGKILL")
@pytest.mark.timeout(600)
def test_sigkill_at_random_points_resumes_identically(tmp_path: Path, worker: Worker, tiny_corpus, tiny_encoder_dir, tiny_generator_dir) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:12])
    base = {"corpus": str(corpus), "encoder": str(tiny_encoder_dir), "generator": str(tiny_generator_dir)}

    # The uninterrupted build.
    ref, ref_log = tmp_path / "ref", tmp_path / "ref.log"
    assert worker.run({**base, "out": str(ref), "log": str(ref_log)}, tmp_path / "spec.json") == 0
    ref_calls, ref_lost, ref_saves = _call_accounting(_runs(ref_log), ref)
    assert ref_calls == {"encode": 6, "generate": 12, "encode-queries": 12} and not ref_lost
    assert set(ref_saves.values()) == {1}

    # The same build, killed 23 times.
    rng = random.Random(SEED)
    plan = [(stage, rng.randint(1, top), rng.choice(["before", "after"])) for stage, n, top in PLAN for _ in range(n)]
    # The swap itself: killed with the new manifest written but not renamed, then
    # with it in place but the clean-up not done.
    plan += [("write", "manifest.json", "before"), ("write", "manifest.json", "after")]
    out, log = tmp_path / "killed", tmp_path / "killed.log"
    for i, (stage, k, when) in enumerate(plan):
        rc = worker.run({**base, "out": str(out), "log": str(log), "kill": f"{stage}:{k}:{when}"}, tmp_path / "spec.json")
        assert rc == -9, f"kill {i} ({stage}:{k}:{when}) did not happen (exit status {rc})"
        last = _runs(log)[-1][-1]
        assert last["ev"] == "kill" and last["stage"] == stage, last
        if (out / "manifest.json").exists():
            # Only once the manifest is swapped in; then it is complete and right.
            assert (stage, k, when) == ("write", "manifest.json", "after")
            assert _file_digests(out) == _file_digests(ref)
        else:
            with pytest.raises(IndexError_) as err:
                open_index(out)
            assert re.search(r"incomplete.*run the same `xqg build` command again", err.value.one_line()), err.value.one_line()
    assert worker.run({**base, "out": str(out), "log": str(log)}, tmp_path / "spec.json") == 0

    runs = _runs(log)
    kills = Counter(rec["stage"] for run in runs for rec in run if rec["ev"] == "kill")
    assert sum(kills.values()) >= 20 and all(kills[s] >= 3 for s in ("encode", "generate", "encode-queries", "fuse", "write")), kills

    # Identical index: every file bit for bit (vectors, fused matrix, passages, queries).
    assert _file_digests(out) == _file_digests(ref)
    a, b = open_index(out, verify=True), open_index(ref, verify=True)
    assert np.array_equal(np.asarray(a.passage_vectors), np.asarray(b.passage_vectors))
    for lang in ("ar", "ja"):
        assert np.array_equal(np.asarray(a.query_vectors[lang]), np.asarray(b.query_vectors[lang]))
    assert [a.generated(i) for i in range(a.size)] == [b.generated(i) for i in range(b.size)]
    assert sum(len(q) for i in range(a.size) for q in a.generated(i).values()) > 0

    # No saved work was computed again: each chunk file was written exactly once,
    # and the only extra model calls are those a kill interrupted before their save.
    calls, lost, saves = _call_accounting(runs, out)
    assert saves == ref_saves, "every chunk saved exactly once, the same chunks as the uninterrupted build"
    for stage in ref_calls:
        assert calls[stage] == ref_calls[stage] + lost[stage], (stage, calls, lost)
    assert sum(lost.values()) <= len(plan)

    # Nothing left behind: no work folder, no temporary files, one data folder.
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert not [p for p in left if p.startswith("work") or p.endswith(".tmp") or ".tmp/" in p], left
    assert sorted(p.name for p in out.iterdir()) == [".lock", json.loads((out / "manifest.json").read_text())["data_dir"], "manifest.json"]
