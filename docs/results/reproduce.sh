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
