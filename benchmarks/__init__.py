"""xqg-tui's benchmark suite: ``python -m benchmarks [--quick] [--json FILE]``.

Not part of the unit tests. Every measurement is a ratio against a baseline run in
the same process, interleaved; see ``docs/performance.md`` for the latest full run.
"""
