"""``--import-generated`` streams its file: rows in any order, memory independent of
the file's size, generated.jsonl written in index order, clear errors."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.errors import XQGError
from xqg_tui.index.builder import BuildConfig, build_index
from xqg_tui.index.store import open_index
from xqg_tui.io.corpus import write_corpus_jsonl

ROWS = 200_000


_STAGE = r"""
import json, resource, sys
from pathlib import Path
from xqg_tui.index.builder import WorkPlan, _chunks, _generated_lines, _write_lines
from xqg_tui.io.generated import scan_generated
from xqg_tui.types import Passage

src, dst, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
# The corpus side exists before an import starts (the builder holds it anyway).
docids = [f"p{i:06d}" for i in range(rows)]
row_of = {d: i for i, d in enumerate(docids)}
passages = [Passage(d, "", "x") for d in docids]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scan = scan_generated(src, row_of)
plan = WorkPlan(config=None, work=dst.parent / "work", passages=passages, chunks=_chunks(rows, 4096), source="import",
                enc_dir=None, gen_dirs={}, qenc_dirs={}, scan=scan, encoder_key="", generator_key="")
_write_lines(dst, _generated_lines(plan, scan.langs, set(), None))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "langs": scan.langs, "ar": int(scan.counts["ar"].sum())}))
"""


def test_200k_rows_stream_in_constant_memory(tmp_path):
    """The reading/ordering stage of an import (scan, then chunks read back in index
    order and written out as generated.jsonl) on 200k shuffled rows: peak memory grows
    by a few bytes per passage, not with the file (holding its rows takes ~190 MB).
    A subprocess, so its peak RSS is this stage's alone."""
    import subprocess
    import sys

    order = list(range(ROWS))
    random.Random(0).shuffle(order)
    src = tmp_path / "gen.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i in order:
            f.write(f'{{"docid": "p{i:06d}", "generated_queries": {{"ar": ["سؤال عن المدينة رقم {i}", "q {i} b"], "ja": ["質問 {i}"]}}}}\n')
    size = src.stat().st_size
    dst = tmp_path / "generated.jsonl"
    proc = subprocess.run([sys.executable, "-c", _STAGE, str(src), str(dst), str(ROWS)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["langs"] == ["ar", "ja"] and res["ar"] == 2 * ROWS
    growth = res["growth_kb"] * 1024
    assert growth < 48 << 20, f"peak grew by {growth / 2**20:.1f} MB for a {size / 2**20:.0f} MB file"
    with open(dst, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 9973 == 0:
                want = {"ar": [f"سؤال عن المدينة رقم {i}", f"q {i} b"], "ja": [f"質問 {i}"]}
                assert json.loads(line) == {"docid": f"p{i:06d}", "generated_queries": want}
    assert i == ROWS - 1


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_corpus_jsonl(path, tiny_corpus)
    return path


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    from xqg_tui.models.encoder import Encoder

    return Encoder.load(str(tiny_encoder_dir))


def _rows(passages):
    # Uneven counts, a passage with no row, one language missing on some rows.
    out = []
    for i, p in enumerate(passages):
        if i == 5:
            continue
        q = {"ru": [f"вопрос {i} {j}" for j in range(1 + i % 3)]}
        if i % 2:
            q["ko"] = [f"질문 {i}"]
        out.append({"docid": p.docid, "generated_queries": q})
    return out


def _write(path: Path, rows) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_import_in_any_order_and_gzipped_gives_the_same_index(tmp_path, corpus_file, tiny_corpus, tiny_encoder_dir, encoder):
    rows = _rows(tiny_corpus)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    files = [_write(tmp_path / "sorted.jsonl", rows), _write(tmp_path / "shuffled.jsonl", shuffled),
             _write(tmp_path / "shuffled.jsonl.gz", shuffled)]
    outs = []
    for k, f in enumerate(files):
        out = tmp_path / f"idx{k}"
        build_index(BuildConfig(corpus=corpus_file, out=out, encoder=str(tiny_encoder_dir), import_generated=f, chunk_size=4, fusion="mean"), encoder=encoder)
        outs.append(open_index(out))
        assert not (out / "work").exists()
    a = outs[0]
    assert a.langs == ["ko", "ru"]
    assert a.generated(5) == {"ko": [], "ru": []} and a.generated(3)["ru"] == ["вопрос 3 0"]
    assert [int(c) for c in a.query_counts["ru"][:4]] == [1, 2, 3, 1]
    for b in outs[1:]:
        assert [b.generated(i) for i in range(b.size)] == [a.generated(i) for i in range(a.size)]
        for lang in a.langs:
            assert np.array_equal(np.asarray(a.query_vectors[lang]), np.asarray(b.query_vectors[lang]))
    data = open_index(tmp_path / "idx1").root / a.manifest["data_dir"] / "generated.jsonl"
    assert [json.loads(l)["docid"] for l in data.read_text(encoding="utf-8").splitlines()] == [p.docid for p in tiny_corpus]


@pytest.mark.parametrize(
    "lines, match",
    [
        (['{"docid": "d01", "generated_queries": {"ar": ["x"]}}', '{"docid": "nope", "generated_queries": {"ar": ["x"]}}'], r"gen.jsonl:2: field 'docid': docid 'nope' is not in the corpus"),
        (['{"docid": "d01", "generated_queries": {"ar": ["x"]}}', "", '{"docid": "d01", "generated_queries": {"ar": ["y"]}}'], r"gen.jsonl:3: field 'docid': duplicate docid 'd01' \(first on line 1\)"),
        (['{"docid": "d01", "generated_queries": {"ar": [1]}}'], r"gen.jsonl:1: field 'generated_queries.ar\[0\]': expected a string"),
        (['{"docid": "d01", "generated_queries": {"ar": ["x"]}', ], r"gen.jsonl:1: invalid JSON"),
    ],
)
def test_bad_rows_are_one_line_errors_and_write_nothing(tmp_path, corpus_file, tiny_encoder_dir, encoder, lines, match):
    f = tmp_path / "gen.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(XQGError, match=match) as e:
        build_index(BuildConfig(corpus=corpus_file, out=tmp_path / "x", encoder=str(tiny_encoder_dir), import_generated=f), encoder=encoder)
    assert "\n" not in e.value.one_line()
    assert not (tmp_path / "x" / "manifest.json").exists()
