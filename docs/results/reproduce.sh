#!/usr/bin/env bash
# Reproduce docs/results/xquad-oracle/ (XQuAD, offline E5 encoder, oracle xQG).
# Needs ../shared/data/xquad (XQuAD) and about an hour of a 2-core CPU.
# Usage: bash docs/results/reproduce.sh [WORKDIR]   (run from the project root)
set -euo pipefail
XQUAD=${XQUAD:-../shared/data/xquad}
WORK=${1:-/tmp/xqg-exp}
OUT=docs/results/xquad-oracle
mkdir -p "$WORK"

# 1. Corpus (240 English paragraphs), queries, qrels, oracle "generated" queries and
#    training data; articles split 24/24 (seed 0), test questions never generated.
xqg experiment xquad-split --xquad "$XQUAD" --out "$WORK/xquad" \
  --query-langs ar,ru,de,zh,hi,tr --gen-langs ar,de,es,hi,ru,th,zh --seed 0

# 2. Index: offline multilingual-e5-small; the oracle queries imported as generated queries.
xqg build --corpus "$WORK/xquad/corpus.jsonl" --import-generated "$WORK/xquad/generated.oracle.jsonl" \
  --langs ar,de,es,hi,ru,th,zh --encoder offline --out "$WORK/idx-oracle" --quiet

# 3. Vector-only experiments on the test pool of all 48 articles (510 questions per language);
#    the queries are encoded once and shared through --query-cache.
Q=()
for l in ar ru de zh hi tr; do Q+=(--queries "$WORK/xquad/queries.test.$l.jsonl" --qrels "$WORK/xquad/qrels.$l.trec"); done
xqg experiment alpha --index "$WORK/idx-oracle" "${Q[@]}" --query-cache "$WORK/qcache" \
  --alphas 0,0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5,0.7 --out "$OUT/alpha" --no-plot
xqg experiment languages --index "$WORK/idx-oracle" "${Q[@]}" --query-cache "$WORK/qcache" \
  --alpha 0.05 --fusion mean --order ar,ru,de,zh,hi,es,th --out "$OUT/languages" --no-plot
xqg experiment queries-per-lang --index "$WORK/idx-oracle" "${Q[@]}" --query-cache "$WORK/qcache" \
  --alpha 0.05 --fusion mean --out "$OUT/queries-per-lang" --no-plot

# 4. Fine-tuning on the 24 train articles, evaluated on the 24 eval articles (ar, ru, de).
E=()
for l in ar ru de; do E+=(--eval-queries "$WORK/xquad/queries.eval.$l.jsonl" --qrels "$WORK/xquad/qrels.$l.trec"); done
xqg experiment finetune --index "$WORK/idx-oracle" "${E[@]}" --train "$WORK/xquad/train.jsonl" \
  --sizes 0,128,256,512,1024 --incremental --train-layers 4 --batch-size 16 --hard-negatives 1 --lr 5e-5 \
  --alpha 0.05 --fusion mean --langs ar,ru,de --checkpoints "$WORK/ckpts" --out "$OUT/finetune" --no-plot

# 5. The demo generator (3 queries per passage in ar, bn, fi, ja, ko, ru, te). It was trained on the
#    XQuAD questions of every paragraph except each 6th one, so only those 40 held-out paragraphs'
#    questions are evaluated (the corpus keeps all 240 paragraphs).
xqg build --corpus "$WORK/xquad/corpus.jsonl" --generator demo --queries-per-lang 3 --seed 0 \
  --encoder offline --out "$WORK/idx-demo" --quiet
"${PYTHON:-python}" - "$WORK/xquad" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
docids = [json.loads(l)["docid"] for l in open(d / "corpus.jsonl", encoding="utf-8")]
held = {x for i, x in enumerate(docids) if (i + 1) % 6 == 0}  # xqg_tui.training.generator.xquad_heldout
for lang in ("ar", "ru", "de", "zh", "hi", "tr"):
    rel = {l.split()[0]: l.split()[2] for l in open(d / f"qrels.{lang}.trec", encoding="utf-8")}
    rows = [l for l in open(d / f"queries.{lang}.jsonl", encoding="utf-8") if rel[json.loads(l)["id"]] in held]
    (d / f"queries.heldout.{lang}.jsonl").write_text("".join(rows), encoding="utf-8")
PY
H=()
for l in ar ru de zh hi tr; do H+=(--queries "$WORK/xquad/queries.heldout.$l.jsonl" --qrels "$WORK/xquad/qrels.$l.trec"); done
xqg experiment alpha --index "$WORK/idx-demo" "${H[@]}" --query-cache "$WORK/qcache" \
  --alphas 0,0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5 --out docs/results/xquad-demo/alpha --no-plot
xqg experiment languages --index "$WORK/idx-demo" "${H[@]}" --query-cache "$WORK/qcache" \
  --alpha 0.05 --fusion mean --out docs/results/xquad-demo/languages --no-plot
xqg experiment queries-per-lang --index "$WORK/idx-demo" "${H[@]}" --query-cache "$WORK/qcache" \
  --alpha 0.05 --fusion mean --out docs/results/xquad-demo/queries-per-lang --no-plot
