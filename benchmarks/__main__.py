"""``python -m benchmarks [--quick] [--json FILE]``: the performance suite.

Each line: measurement, our figure, the baseline's figure measured in the same run
(interleaved reps, medians), their ratio, the target and whether it is met.
``--quick`` (CI smoke check, < 3 minutes) runs every measurement on small inputs
and never fails on timings; the full run also rewrites ``docs/performance.md``.
"""
from __future__ import annotations

import argparse
import os
import sys

# Thread counts must be in the environment before numpy/torch/faiss load their
# thread pools (OpenBLAS reads it once, at import).
_threads = None
for _i, _a in enumerate(sys.argv):
    if _a.startswith("--threads="):
        _threads = _a.split("=", 1)[1]
    elif _a == "--threads" and _i + 1 < len(sys.argv):
        _threads = sys.argv[_i + 1]
_threads = _threads or os.environ.get("XQG_BENCH_THREADS") or "2"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTIONS = ("encode", "generate", "search", "scaling", "memory", "demo")
MODULES = {"demo": "demo_build"}  # section name -> module under benchmarks/ (default: the same name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small inputs; CI smoke check (< 3 minutes)")
    p.add_argument("--json", metavar="FILE", help="write machine facts and results as JSON")
    p.add_argument("--threads", type=int, default=int(_threads), help="threads for every engine (default 2)")
    p.add_argument("--only", metavar="SECTIONS", help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--docs", metavar="FILE", default=None,
                   help="where the full run writes its report (default docs/performance.md; 'none' = nowhere)")
    p.add_argument("--doc-from-json", metavar="FILE", default=None,
                   help="measure nothing: rewrite the report (--docs, default docs/performance.md) from a saved --json file")
    p.add_argument("--workdir", metavar="DIR", default=None, help="scratch folder for synthetic indexes (default: system temp)")
    args = p.parse_args(argv)

    from pathlib import Path

    from . import common, report
    from .common import Result, log

    if args.doc_from_json:
        from .performance_doc import write_performance_doc

        machine, meta, results = report.results_from_json(Path(args.doc_from_json))
        docs = args.docs or str(Path(__file__).resolve().parent.parent / "docs" / "performance.md")
        write_performance_doc(Path(docs), machine, results, meta)
        log(f"wrote {docs} from {args.doc_from_json}")
        return 0

    import signal

    # A killed run still removes its scratch indexes (the sections clean up in `finally`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.set_threads(args.threads)
    chosen = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    workdir = Path(args.workdir) if args.workdir else None
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    machine = common.machine_info(args.threads)
    log(f"machine: {machine['cores']} cores, {machine['cpu_model']}, threads {args.threads}, load {machine['load_average_start']}")

    import time

    t0 = time.perf_counter()
    results: list[Result] = []
    section_seconds: dict[str, float] = {}
    errors: list[str] = []
    for section in chosen:
        s0 = time.perf_counter()
        log(f"--- {section}")
        try:
            import importlib

            mod = importlib.import_module(f"benchmarks.{MODULES.get(section, section)}")
            got = mod.run(quick=args.quick, workdir=workdir)
        except Exception as exc:  # report and go on; the exit status says it failed
            import traceback

            traceback.print_exc()
            errors.append(f"{section}: {type(exc).__name__}: {exc}")
            got = []
        section_seconds[section] = round(time.perf_counter() - s0, 1)
        for r in got:
            print(report.line(r), flush=True)
        results.extend(got)
    total = time.perf_counter() - t0
    machine["load_average_end"] = common.load_average()
    meta = {"quick": args.quick, "sections": list(chosen), "section_seconds": section_seconds,
            "total_seconds": round(total, 1), "errors": errors}
    log(f"done in {total:.0f} s; {sum(1 for r in results if r.met)} of {sum(1 for r in results if r.met is not None)} targets met")
    if args.json:
        report.write_json(Path(args.json), machine, results, meta)
        log(f"wrote {args.json}")
    docs = args.docs
    if docs is None and not args.quick and not args.only:
        docs = str(Path(__file__).resolve().parent.parent / "docs" / "performance.md")
    if docs and docs.lower() != "none":
        from .performance_doc import write_performance_doc

        write_performance_doc(Path(docs), machine, results, meta)
        log(f"wrote {docs}")
    if errors:
        for e in errors:
            log(f"ERROR {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
