"""``python -m benchmarks.scale_run --passages 1000000 --shards 4 --work DIR [--json OUT]``:
a real sharded build, merge, search and approximate search on a synthetic corpus
(issue 9, docs/scale.md "Measured sharded run").

Everything the product does is run through its command line, as a user would
(``xqg build --shard I/N``, ``xqg merge``, ``xqg ann build``, ``xqg ann eval``,
``xqg search``), each command a subprocess whose peak RSS is read from its own
``wait4`` rusage. Exact-search latency is measured by a second subprocess of this
module that opens the merged index with the library ``Searcher`` (the code under
``xqg search`` / ``xqg retrieve``) and times one query at a time.

What is synthetic, and why that is enough here: the run is about throughput,
memory and disk at 1M passages, not retrieval quality.

* Corpus: ``--passages`` English-looking passages, a title of 2-3 words and 60-100
  words drawn (Zipf-like) from the words of the bundled demo corpus, docids
  ``syn-0000000`` ...; deterministic in ``--seed``.
* Generated queries (imported with ``--import-generated``, as the ielab release is):
  ``--gen-langs`` languages x ``--gen-per-lang`` queries per passage, each 5-8 of the
  passage's words transliterated letter by letter into the target script (Arabic,
  Cyrillic, katakana, ...). They look like the right script to a tokenizer; they mean
  nothing.
* Encoder: a random-weight BERT saved with ``save_pretrained`` into a folder and
  loaded by path through the normal ``Encoder.load``: hidden 384 (multilingual-e5-
  small's dimension, so vectors and index sizes are e5-small's), ``--layers`` layers,
  mean pooling, normalised, with a WordPiece tokenizer (``--vocab`` pieces) trained
  here with ``tokenizers`` on the synthetic words. Encoding costs about
  ``layers / 12`` of e5-small per token; its throughput is *not* the paper model's
  (``benchmarks/scale_throughput.py`` measures that).

``--passages 20000`` is the smoke size (a few minutes). The JSON has every figure,
the commands run, and the 1-minute load average before and after each step (the
machine is shared; figures are from one run, not best-of).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEMO_CORPUS = ROOT / "assets" / "demo" / "corpus.jsonl"
HIDDEN = 384

# Letter maps into other scripts (a-z). Enough to look like the language to a tokenizer.
_ALPHA = "abcdefghijklmnopqrstuvwxyz"
SCRIPTS = {
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهو",
    "ru": "абцдефгхийклмнопкрстуввхызж",
    "ja": "アバチデエフガハイジカラマナオパクラサタウヴワクヤズ",
    "ko": "아바차다에파가하이자카라마나오파쿠라사타우바와크야자",
    "bn": "অবচদএফগহইজকলমনওপকরসতউভওক্যজ",
    "te": "అబచదఎఫగహఇజకలమనఒపకరసతఉవవక్యజ",
    "fi": "abcdefghijklmnopqrstuvwxyz",
}


def _load1() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def _du(path: Path) -> int:
    """Bytes on disk under ``path`` (hard links counted once, like ``du``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        try:
            st = p.lstat()
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_blocks * 512
    return total


def _apparent(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- synthetic data ------------------------------------------------------------------
def word_list() -> list[str]:
    text = "\n".join(json.loads(line)["text"] for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip())
    words = sorted({w.lower() for w in re.findall(r"[A-Za-z]{2,}", text)})
    return words


def _translit(word: str, lang: str) -> str:
    table = SCRIPTS[lang]
    return "".join(table[_ALPHA.index(c) % len(table)] if c in _ALPHA else c for c in word)


def make_corpus(path: Path, gen_path: Path, n: int, langs: list[str], per_lang: int, seed: int) -> dict[str, Any]:
    """Write the corpus and the generated-queries JSONL, block by block (constant memory)."""
    words = word_list()
    w = np.asarray(words, dtype=object)
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    prob = 1.0 / ranks**0.9
    prob /= prob.sum()
    rng = np.random.default_rng(seed)
    rng.shuffle(w)  # which word is frequent: seeded, not alphabetical
    tw = {lang: np.asarray([_translit(x, lang) for x in w], dtype=object) for lang in langs}
    t0 = time.perf_counter()
    block = 10_000
    n_words = 0
    with open(path, "w", encoding="utf-8") as fc, open(gen_path, "w", encoding="utf-8") as fg:
        for a in range(0, n, block):
            b = min(n, a + block)
            m = b - a
            lengths = rng.integers(60, 101, size=m)
            ids = rng.choice(len(words), size=(m, 100), p=prob)
            tlen = rng.integers(2, 4, size=m)
            tids = rng.choice(len(words), size=(m, 3), p=prob)
            qlen = rng.integers(5, 9, size=(m, len(langs), per_lang))
            qpos = rng.integers(0, 60, size=(m, len(langs), per_lang, 8))
            cl, gl = [], []
            for j in range(m):
                docid = f"syn-{a + j:07d}"
                row = ids[j, : lengths[j]]
                text = " ".join(w[row])
                text = text[0].upper() + text[1:] + "."
                title = " ".join(x.capitalize() for x in w[tids[j, : tlen[j]]])
                cl.append(json.dumps({"docid": docid, "title": title, "text": text}, ensure_ascii=False))
                n_words += int(lengths[j])
                gq = {}
                for li, lang in enumerate(langs):
                    tab = tw[lang]
                    gq[lang] = [" ".join(tab[ids[j, qpos[j, li, q, : qlen[j, li, q]]]]) + "?" for q in range(per_lang)]
                gl.append(json.dumps({"docid": docid, "generated_queries": gq}, ensure_ascii=False))
            fc.write("\n".join(cl) + "\n")
            fg.write("\n".join(gl) + "\n")
    return {"passages": n, "mean_words": round(n_words / n, 1), "vocabulary_words": len(words),
            "corpus_bytes": path.stat().st_size, "generated_bytes": gen_path.stat().st_size,
            "generated_queries": n * len(langs) * per_lang, "seconds": round(time.perf_counter() - t0, 2)}


def make_encoder(folder: Path, layers: int, intermediate: int, vocab: int, seed: int) -> dict[str, Any]:
    """Random-weight BERT (hidden 384) + a WordPiece tokenizer trained on the synthetic words."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = word_list()
    texts = list(words) + [_translit(x, lang) for lang in SCRIPTS for x in words]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(fast), hidden_size=HIDDEN, num_hidden_layers=layers, num_attention_heads=12,
                        intermediate_size=intermediate, max_position_embeddings=512, pad_token_id=fast.pad_token_id)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["xqg"] = {"pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: "}
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    params = sum(p.numel() for p in model.parameters())
    return {"folder": str(folder), "layers": layers, "hidden": HIDDEN, "heads": 12, "intermediate": intermediate,
            "vocab": len(fast), "parameters": params}


# ---- running commands ----------------------------------------------------------------
def xqg_cmd() -> list[str]:
    return [sys.executable, "-m", "xqg_tui"]


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None, nice: int = 0) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, exit code, peak RSS (this process tree via wait4), stdout."""
    load0 = _load1()
    t0 = time.perf_counter()
    with open(log, "ab") as lf:
        lf.write(("\n$ " + shlex.join(cmd) + "\n").encode())
        lf.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=lf, env={**os.environ, **(env or {})},
                                cwd=str(ROOT), preexec_fn=(lambda: os.nice(nice)) if nice else None)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        lf.write(out)
    wall = time.perf_counter() - t0
    res = {"cmd": shlex.join(cmd[2:] if cmd[:3] == xqg_cmd() else cmd), "rc": proc.returncode, "seconds": round(wall, 2),
           "peak_rss_mib": round(ru.ru_maxrss / 1024, 1), "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 1),
           "load1_before": load0, "load1_after": _load1()}
    if env:
        res["env"] = env
    text = out.decode("utf-8", "replace").strip()
    try:
        res["json"] = json.loads(text.splitlines()[-1]) if text else None
    except (ValueError, IndexError):
        res["stdout_tail"] = text[-2000:]
    print(f"[scale_run] {res['cmd'][:110]} -> rc {res['rc']} in {res['seconds']}s, peak RSS {res['peak_rss_mib']} MiB, load {load0}->{res['load1_after']}",
          file=sys.stderr, flush=True)
    if proc.returncode != 0:
        print(f"[scale_run] FAILED, see {log}", file=sys.stderr, flush=True)
    return res


# ---- search measurement (a subprocess of this module) ---------------------------------
def search_probe(args: argparse.Namespace) -> int:
    """Open the index, encode the probe queries, time exact search one query at a time
    for the plain and the augmented spec; print one JSON line."""
    from xqg_tui.search import Searcher

    t0 = time.perf_counter()
    s = Searcher.open(args.index, block_rows=args.block_rows)
    opened = time.perf_counter() - t0
    queries = [json.loads(x)["text"] for x in Path(args.probe_queries).read_text(encoding="utf-8").splitlines() if x.strip()]
    t1 = time.perf_counter()
    Q = s.encode_queries(queries)
    enc = time.perf_counter() - t1
    out: dict[str, Any] = {"open_seconds": round(opened, 3), "queries": len(queries), "encode_ms_per_query": round(1000 * enc / len(queries), 3),
                           "sharded": s.sharded, "memory_budget_bytes": s.memory, "block_rows": s.block_rows}
    specs = {"plain": s.spec(alpha=0.0), "augmented": s.spec()}
    for name, spec in specs.items():
        out[f"{name}_blockwise"] = bool(s.sharded or s.blockwise(spec))
        t2 = time.perf_counter()
        s.search_vectors(Q[:1], args.k, spec)  # first query: page-in / fused-matrix build
        first = time.perf_counter() - t2
        lat = []
        for i in range(len(Q)):
            t = time.perf_counter()
            s.search_vectors(Q[i : i + 1], args.k, spec)
            lat.append(time.perf_counter() - t)
        lat_ms = 1000 * np.asarray(lat)
        t3 = time.perf_counter()
        s.search_vectors(Q, args.k, spec)
        batch = time.perf_counter() - t3
        out[name] = {"first_query_ms": round(1000 * first, 1), "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
                     "p99_ms": round(float(np.percentile(lat_ms, 99)), 2), "mean_ms": round(float(lat_ms.mean()), 2),
                     "batch_ms_per_query": round(1000 * batch / len(Q), 3), "spec": {"alpha": spec.alpha, "fusion": spec.fusion, "langs": list(spec.langs)}}
    # Whole-request latency of Searcher.search (encode + plain and augmented rankings + matched queries), like the TUI.
    lat = []
    for q in queries[: min(args.full_queries, len(queries))]:
        t = time.perf_counter()
        s.search(q, lang="en", k=args.k)
        lat.append(time.perf_counter() - t)
    lat_ms = 1000 * np.asarray(lat)
    out["searcher_search"] = {"queries": len(lat), "p50_ms": round(float(np.percentile(lat_ms, 50)), 2), "p99_ms": round(float(np.percentile(lat_ms, 99)), 2)}
    print(json.dumps(out))
    return 0


def write_probe_queries(corpus: Path, path: Path, n: int, total: int, seed: int) -> None:
    """``n`` English queries: 6 words of random passages (read by streaming the corpus)."""
    rng = np.random.default_rng(seed + 7)
    want = set(rng.choice(total, size=min(n, total), replace=False).tolist())
    out = []
    with open(corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i in want:
                obj = json.loads(line)
                ws = obj["text"].rstrip(".").split()
                a = int(rng.integers(0, max(1, len(ws) - 6)))
                out.append(json.dumps({"id": f"probe-{i}", "text": " ".join(ws[a : a + 6]), "lang": "en"}))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# ---- main ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale_run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work", default="/work/scale_run", help="work folder (created; large files)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-langs", default="ar,ru,ja")
    ap.add_argument("--gen-per-lang", type=int, default=1)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--max-passage-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--ray-shard", action="store_true", help="build shard 0 with --engine ray --num-cpus 2 as well (timed, compared with the local one)")
    ap.add_argument("--single", action="store_true", help="also merge with --layout single (copies every vector once more)")
    ap.add_argument("--probes", type=int, default=200, help="queries for the search latency")
    ap.add_argument("--ann", default="ivfpq,hnsw", help="ANN kinds to build ('' = none)")
    ap.add_argument("--ann-args", default="", help="extra args for every `xqg ann build`, e.g. '--nlist 1024'")
    ap.add_argument("--hnsw-args", default="", help="extra args for `xqg ann build --kind hnsw`")
    ap.add_argument("--ivfpq-args", default="", help="extra args for `xqg ann build --kind ivfpq`")
    ap.add_argument("--block-memory", default="256M", help="XQG_SEARCH_MEMORY for the bounded-memory search run")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=1, help="shard builds run at the same time")
    ap.add_argument("--keep", action="store_true", help="keep the work folder's large files")
    ap.add_argument("--reuse", action="store_true", help="reuse the data, encoder and shard folders already in the work folder (builds resume)")
    # internal: the search probe subprocess
    ap.add_argument("--_search", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", help=argparse.SUPPRESS)
    ap.add_argument("--probe-queries", help=argparse.SUPPRESS)
    ap.add_argument("--block-rows", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--full-queries", type=int, default=20, help="queries timed through Searcher.search (encode + both rankings)")
    args = ap.parse_args(argv)
    if args._search:
        return search_probe(args)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    langs = [x for x in args.gen_langs.split(",") if x]
    res: dict[str, Any] = {
        "what": "issue 9: sharded build, merge, search and ANN on synthetic passages, through the xqg command line",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "load1_start": _load1(), "python": sys.version.split()[0]},
        "settings": {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("index", "probe_queries", "block_rows", "k")},
        "note": "synthetic data: about throughput, memory and disk, not retrieval quality; random-weight encoder with e5-small's dimension (384)",
    }
    t_all = time.perf_counter()
    corpus, gen, enc_dir = work / "corpus.jsonl", work / "generated.jsonl", work / "encoder"
    if not (args.reuse and corpus.exists() and gen.exists()):
        res["data"] = make_corpus(corpus, gen, args.passages, langs, args.gen_per_lang, args.seed)
    else:
        res["data"] = {"passages": args.passages, "reused": True, "corpus_bytes": corpus.stat().st_size, "generated_bytes": gen.stat().st_size}
    print(f"[scale_run] data: {res['data']}", file=sys.stderr, flush=True)
    if not (args.reuse and (enc_dir / "config.json").exists()):
        shutil.rmtree(enc_dir, ignore_errors=True)
        # In a child process: Linux reports a child's peak RSS (wait4) as at least the parent's RSS at
        # fork, so this process must stay small (no torch here) for the figures below to be right.
        made = subprocess.run([sys.executable, "-c", "import json,sys; from benchmarks.scale_run import make_encoder; "
                               f"print(json.dumps(make_encoder(__import__('pathlib').Path({str(enc_dir)!r}), {args.layers}, {args.intermediate}, {args.vocab}, {args.seed})))"],
                              cwd=str(ROOT), check=True, capture_output=True, text=True)
        res["encoder"] = json.loads(made.stdout.strip().splitlines()[-1])
    else:
        res["encoder"] = {"folder": str(enc_dir), "reused": True}
    probes = work / "probes.jsonl"
    write_probe_queries(corpus, probes, args.probes, args.passages, args.seed)

    build_common = ["--corpus", str(corpus), "--encoder", str(enc_dir), "--import-generated", str(gen), "--langs", ",".join(langs),
                    "--queries-per-lang", str(args.gen_per_lang), "--max-passage-length", str(args.max_passage_length),
                    "--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size), "--seed", str(args.seed),
                    "--device", "cpu", "--quiet", "--json"]
    shard_dirs = [work / f"shard-{i}" for i in range(args.shards)]
    res["shards"] = [None] * args.shards

    def build_one(i: int) -> None:
        out = shard_dirs[i]
        if not args.reuse:  # with --reuse, `xqg build` resumes (or reuses) what is there
            shutil.rmtree(out, ignore_errors=True)
        r = run(xqg_cmd() + ["build", "--shard", f"{i}/{args.shards}", "--out", str(out)] + build_common, work / f"build-{i}.log", nice=args.nice)
        r["disk_bytes"] = _du(out) if r["rc"] == 0 else None
        res["shards"][i] = r

    t_b = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        list(pool.map(build_one, range(args.shards)))
    res["build_wall_seconds"] = round(time.perf_counter() - t_b, 1)
    _save(res, args)
    if any(r["rc"] != 0 for r in res["shards"]):
        res["error"] = "a shard build failed"
        return _finish(res, args, t_all)
    if args.ray_shard:
        out = work / "shard-0-ray"
        shutil.rmtree(out, ignore_errors=True)
        r = run(xqg_cmd() + ["build", "--shard", f"0/{args.shards}", "--out", str(out), "--engine", "ray", "--num-cpus", "2"] + build_common, log, nice=args.nice)
        if r["rc"] == 0:
            r["disk_bytes"] = _du(out)
            r["same_vectors_as_local"] = _same_vectors(work / "shard-0", out)
        res["ray_shard0"] = r
        shutil.rmtree(out, ignore_errors=True)
    merged = work / "merged"
    shutil.rmtree(merged, ignore_errors=True)
    res["merge"] = run(xqg_cmd() + ["merge", "--out", str(merged), "--json", *map(str, shard_dirs)], log, nice=args.nice)
    if res["merge"]["rc"] != 0:
        res["error"] = "merge failed"
        return _finish(res, args, t_all)
    shards_bytes = sum(s["disk_bytes"] for s in res["shards"])
    both = _du_many(shard_dirs + [merged])  # hard links counted once
    res["disk"] = {"shards_bytes": shards_bytes, "merged_apparent_bytes": _apparent(merged),
                   "shards_plus_merged_bytes": both, "merge_added_bytes": both - shards_bytes}
    if args.single:
        single = work / "merged-single"
        shutil.rmtree(single, ignore_errors=True)
        res["merge_single"] = run(xqg_cmd() + ["merge", "--layout", "single", "--out", str(single), "--json", *map(str, shard_dirs)], log, nice=args.nice)
        if res["merge_single"]["rc"] == 0:
            res["merge_single"]["disk_bytes"] = _du(single)
            res["single_search"] = run([sys.executable, "-m", "benchmarks.scale_run", "--_search", "--index", str(single), "--probe-queries", str(probes), "--full-queries", str(args.full_queries)], log, nice=args.nice)
        shutil.rmtree(single, ignore_errors=True)
    _save(res, args)
    files = {}
    for p in sorted(shard_dirs[0].rglob("*")):
        if p.is_file():
            files[str(p.relative_to(shard_dirs[0]))] = sum((d / p.relative_to(shard_dirs[0])).stat().st_size for d in shard_dirs if (d / p.relative_to(shard_dirs[0])).exists())
    res["disk"]["files_bytes_all_shards"] = files
    res["disk"]["bytes_per_passage"] = round(res["disk"]["shards_bytes"] / args.passages, 1)

    # exact search: default memory budget and a small one (block-wise)
    res["search_exact"] = run([sys.executable, "-m", "benchmarks.scale_run", "--_search", "--index", str(merged), "--probe-queries", str(probes), "--full-queries", str(args.full_queries)], log, nice=args.nice)
    res["search_exact_bounded"] = run([sys.executable, "-m", "benchmarks.scale_run", "--_search", "--index", str(merged), "--probe-queries", str(probes), "--full-queries", str(args.full_queries)],
                                      log, env={"XQG_SEARCH_MEMORY": args.block_memory}, nice=args.nice)
    _save(res, args)
    q1 = json.loads(probes.read_text().splitlines()[0])["text"]
    res["xqg_search_cli"] = run(xqg_cmd() + ["search", "--index", str(merged), "--lang", "en", "--json", q1], log, nice=args.nice)
    if res["xqg_search_cli"].get("json"):
        res["xqg_search_cli"]["json"] = {"seconds": res["xqg_search_cli"]["json"].get("seconds"), "hits": len(res["xqg_search_cli"]["json"].get("hits", []))}

    # approximate search: build (default augmented spec), then eval on other probes
    res["ann"] = {}
    for kind in [x for x in args.ann.split(",") if x]:
        extra = shlex.split(args.ann_args) + shlex.split(getattr(args, f"{kind}_args"))
        b = run(xqg_cmd() + ["ann", "build", str(merged), "--kind", kind, "--json", "--queries", str(probes)] + extra, log, nice=args.nice)
        e = run(xqg_cmd() + ["ann", "eval", str(merged), "--kind", kind, "--json"], log, nice=args.nice) if b["rc"] == 0 else None
        res["ann"][kind] = {"build": b, "eval": e, "extra_args": extra}
        if b["rc"] == 0:
            res["ann"][kind]["file_bytes"] = _du(merged / "ann")
        _save(res, args)
    return _finish(res, args, t_all)


def _du_many(paths: list[Path]) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in paths:
        for p in [root, *root.rglob("*")]:
            st = p.lstat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _same_vectors(a: Path, b: Path) -> bool | None:
    try:
        xs = sorted(p.relative_to(a) for p in a.rglob("*.npy"))
        return bool(xs) and all((a / x).read_bytes() == (b / x).read_bytes() for x in xs)
    except OSError:
        return None


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """The headline figures (also printed)."""
    n = res["data"]["passages"]
    sh = res.get("shards", [])
    s: dict[str, Any] = {"passages": n}
    if sh:
        build = sum(x["seconds"] for x in sh)
        s["build_seconds_sum_of_shards"] = round(build, 1)
        s["build_passages_per_second"] = round(n / build, 1)
        s["build_peak_rss_mib_max_shard"] = max(x["peak_rss_mib"] for x in sh)
        stages: dict[str, float] = {}
        for x in sh:
            for k, v in ((x.get("json") or {}).get("stage_seconds") or {}).items():
                stages[k] = round(stages.get(k, 0.0) + v, 1)
        s["build_stage_seconds_sum"] = stages
    if "merge" in res:
        s["merge_seconds"] = res["merge"]["seconds"]
        s["merge_peak_rss_mib"] = res["merge"]["peak_rss_mib"]
    if "disk" in res:
        s["disk_bytes_per_passage"] = res["disk"]["bytes_per_passage"]
        s["disk_total_gib"] = round(res["disk"]["shards_bytes"] / 2**30, 2)
    for key in ("search_exact", "search_exact_bounded"):
        j = (res.get(key) or {}).get("json")
        if j:
            s[key] = {"p50_ms_plain": j["plain"]["p50_ms"], "p99_ms_plain": j["plain"]["p99_ms"],
                      "p50_ms_augmented": j["augmented"]["p50_ms"], "p99_ms_augmented": j["augmented"]["p99_ms"],
                      "blockwise": j["augmented_blockwise"], "peak_rss_mib": res[key]["peak_rss_mib"]}
    for kind, a in (res.get("ann") or {}).items():
        b, e = (a["build"].get("json") or {}), ((a.get("eval") or {}).get("json") or {})
        s[f"ann_{kind}"] = {"build_seconds": b.get("build_seconds"), "command_seconds": a["build"]["seconds"], "peak_rss_mib": a["build"]["peak_rss_mib"],
                            "params": b.get("params"), "recall@10": e.get("recall@10"), "recall@100": e.get("recall@100"),
                            "recall@10_english_probes": (b.get("recall") or {}).get("recall@10"),
                            "recall@100_english_probes": (b.get("recall") or {}).get("recall@100"),
                            "ann_ms_per_query": e.get("ann_ms_per_query"), "exact_ms_per_query": e.get("exact_ms_per_query"),
                            "file_bytes": a.get("file_bytes")}
    return s


def _save(res: dict[str, Any], args: argparse.Namespace) -> None:
    """Write what is measured so far (a run stopped half way still leaves its figures)."""
    if args.json:
        try:
            res["summary"] = summary(res)
        except Exception:  # noqa: BLE001
            pass
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _finish(res: dict[str, Any], args: argparse.Namespace, t_all: float) -> int:
    res["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    res["machine"]["load1_end"] = _load1()
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        res["summary"] = summary(res)
    except Exception as e:  # noqa: BLE001 - the raw figures are still written
        res["summary_error"] = repr(e)
    text = json.dumps(res, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(json.dumps(res.get("summary", {}), indent=2))
    if not args.keep:
        work = Path(args.work)
        for name in ("corpus.jsonl", "generated.jsonl", "merged", "merged-single", "shard-0-ray", *[f"shard-{i}" for i in range(args.shards)]):
            p = work / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
