"""The contrastive encoder trainer and the fine-tuning experiment on tiny models."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from xqg_tui.cli import main
from xqg_tui.errors import InputError, XQGError
from xqg_tui.training.encoder import (
    TrainConfig,
    TrainExample,
    _pick,
    read_training_file,
    subset,
    train_encoder,
    write_training_file,
)
from xqg_tui.types import Passage

from conftest import _WORDS


def _examples(tiny_corpus, n_per: int = 2, seed: int = 0) -> list[TrainExample]:
    """Questions (random ar/ru words) whose positive is one passage, negatives two others."""
    rng = random.Random(seed)
    out = []
    for i, p in enumerate(tiny_corpus):
        for j in range(n_per):
            lang = "ar" if j % 2 == 0 else "ru"
            q = " ".join(rng.choice(_WORDS[lang]) for _ in range(5))
            negs = tuple(tiny_corpus[(i + k) % len(tiny_corpus)] for k in (1, 2))
            out.append(TrainExample(f"t{i}-{j}", q, (p,), negs))
    return out


@pytest.fixture(scope="module")
def train_file(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    write_training_file(path, _examples(tiny_corpus))
    return path


def test_read_training_file_round_trip_and_errors(train_file, tmp_path):
    ex = read_training_file(train_file)
    assert len(ex) == 40 and ex[0].positives[0].docid == "d01" and len(ex[0].negatives) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive_passages": [{"docid": "a", "text": "t"}]}\n{"query": "q2"}\n', encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_training_file(bad)
    assert ":2" in str(e.value) and "positive_passages" in str(e.value)
    bad.write_text('{"query": "q", "positive_passages": [{"docid": "a", "text": ""}]}\n', encoding="utf-8")
    with pytest.raises(InputError, match="text"):
        read_training_file(bad)
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="JSON"):
        read_training_file(bad)


def test_subsets_are_nested_and_seeded(train_file):
    ex = read_training_file(train_file)
    a, b = subset(ex, 10, 3), subset(ex, 20, 3)
    assert b[:10] == a and subset(ex, 10, 3) == a and subset(ex, 10, 4) != a
    with pytest.raises(XQGError):
        subset(ex, 41, 0)


def test_batch_dedupes_shared_positives_and_drops_false_negatives():
    p1, p2, p3 = Passage("a", "", "x"), Passage("b", "", "y"), Passage("c", "", "z")
    batch = [TrainExample("1", "q1", (p1,), (p1, p2)), TrainExample("2", "q2", (p1,), (p3,)), TrainExample("3", "q3", (p2,))]
    queries, passages, targets = _pick(batch, random.Random(0), hard=2)
    ids = [p.docid for p in passages]
    assert len(ids) == len(set(ids)) == 3  # a, b, c once each
    assert targets[0] == targets[1] == ids.index("a") and targets[2] == ids.index("b")
    # q1's own positive listed as its negative is never used as one: every column is distinct
    assert queries == ["q1", "q2", "q3"]


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_file, tiny_e5_encoder_dir):
    out = tmp_path_factory.mktemp("ckpt") / "model"
    cfg = TrainConfig(base=str(tiny_e5_encoder_dir), out=out, epochs=6, batch_size=8, hard_negatives=1,
                      learning_rate=5e-3, seed=11, warmup_ratio=0.0)
    res = train_encoder(cfg, read_training_file(train_file))
    return cfg, res


def test_training_lowers_the_loss_and_saves_a_loadable_checkpoint(trained, tiny_e5_encoder_dir):
    from xqg_tui.models.encoder import Encoder

    cfg, res = trained
    assert res.steps == 30 and res.temperature == 0.05  # normalised encoder
    assert res.losses[-1] < res.losses[0]
    files = {p.name for p in res.path.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt")) for f in files)
    info = json.loads((res.path / "xqg_training.json").read_text(encoding="utf-8"))
    assert info["examples"] == 40 and info["config"]["seed"] == 11
    enc = Encoder.load(str(res.path), device="cpu")
    assert (enc.pooling, enc.normalize, enc.query_prefix, enc.passage_prefix) == ("mean", True, "query: ", "passage: ")
    before, after = _weights(Path(tiny_e5_encoder_dir)), _weights(res.path)
    emb = "embeddings.word_embeddings.weight"
    assert np.array_equal(before[emb], after[emb])  # frozen by default
    changed = [k for k in before if k != emb and k in after and not np.array_equal(before[k], after[k])]
    assert changed  # the transformer layers moved


def test_training_is_deterministic(trained, train_file, tmp_path):
    cfg, res = trained
    from dataclasses import replace

    again = train_encoder(replace(cfg, out=tmp_path / "again"), read_training_file(train_file))
    a, b = _weights(res.path), _weights(again.path)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert again.losses == res.losses


def test_fine_tuning_moves_queries_towards_their_passages(trained, train_file, tiny_e5_encoder_dir, tiny_corpus):
    """On its training data the fine-tuned encoder ranks positives higher than the base does."""
    from xqg_tui.models.encoder import Encoder

    _, res = trained
    ex = read_training_file(train_file)
    rows = {p.docid: i for i, p in enumerate(tiny_corpus)}

    def loss(folder) -> float:
        # The contrastive loss itself over the whole corpus: a continuous measure, unlike
        # MRR over 40 queries, whose rank steps made a small gain on a random model flaky.
        enc = Encoder.load(str(folder), device="cpu")
        P = enc.encode_passages(tiny_corpus)
        Q = enc.encode_queries([e.query for e in ex])
        S = (Q @ P.T) / res.temperature
        S = S - S.max(axis=1, keepdims=True)
        logp = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
        return float(-np.mean([logp[i, rows[e.positives[0].docid]] for i, e in enumerate(ex)]))

    before, after = loss(tiny_e5_encoder_dir), loss(res.path)
    print(f"contrastive loss on the training queries: {before:.4f} -> {after:.4f}")
    assert after < before - 0.02


def test_config_errors():
    with pytest.raises(XQGError):
        TrainConfig(base="x", out=Path("o"), batch_size=1)
    with pytest.raises(XQGError):
        TrainConfig(base="x", out=Path("o"), epochs=0)


def test_cli_train_encoder(train_file, tiny_e5_encoder_dir, tmp_path, capsys):
    out = tmp_path / "cli-model"
    rc = main(["train", "encoder", "--base", str(tiny_e5_encoder_dir), "--train", str(train_file), "--out", str(out),
               "--size", "16", "--batch-size", "8", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["examples"] == 16 and info["steps"] == 2 and (out / "model.safetensors").exists()


@pytest.fixture(scope="module")
def ft_collection(tmp_path_factory, tiny_corpus, tiny_e5_encoder_dir):
    """A tiny index with one generated ar query per passage and 20 ru eval queries."""
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.io.corpus import write_corpus_jsonl
    from xqg_tui.io.qrels import write_qrels
    from xqg_tui.io.queries import write_queries_jsonl
    from xqg_tui.types import Query

    root = tmp_path_factory.mktemp("ft")
    rng = random.Random(1)
    corpus = root / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus)
    gen = root / "gen.jsonl"
    gen.write_text("".join(json.dumps({"docid": p.docid, "generated_queries": {"ar": [" ".join(rng.choice(_WORDS["ar"]) for _ in range(5))]}},
                                      ensure_ascii=False) + "\n" for p in tiny_corpus), encoding="utf-8")
    index = root / "index"
    build_index(BuildConfig(corpus=corpus, out=index, encoder=str(tiny_e5_encoder_dir), generator="none", import_generated=gen, langs=["ar"]))
    qs = [Query(f"e{i}", " ".join(rng.choice(_WORDS["ru"]) for _ in range(5)), "ru") for i in range(20)]
    write_queries_jsonl(root / "q.ru.jsonl", qs)
    write_qrels(root / "qrels.trec", {q.qid: {tiny_corpus[i].docid: 1} for i, q in enumerate(qs)})
    return {"index": index, "queries": root / "q.ru.jsonl", "qrels": root / "qrels.trec"}


def test_finetune_experiment(tmp_path, ft_collection, train_file):
    """Sizes 0/8/16 on a tiny index: plain and xQG per size, checkpoints, reuse on rerun."""
    from xqg_tui.experiments import Inputs, run_experiment

    inputs = Inputs.make(ft_collection["index"], [ft_collection["queries"]], ft_collection["qrels"], alpha=0.3, fusion="mean", seed=2)
    out = tmp_path / "res"
    result, paths = run_experiment("finetune", inputs, out=out, train=str(train_file), sizes="8,16", batch_size=4, lr=1e-3)
    keys = [r.setting.key for r in result.results]
    assert keys == ["plain:0", "xqg:0", "plain:8", "xqg:8", "plain:16", "xqg:16"]
    training = result.provenance["training"]
    assert training["0"]["reused_index_vectors"] is True
    assert training["8"]["steps"] == 2 and training["16"]["steps"] == 4 and training["16"]["reused_checkpoint"] is False
    assert (out / "checkpoints" / "size-16" / "model.safetensors").exists()
    # fine-tuned models rank differently from the base: their runs are re-encoded, not the stored vectors
    assert result.by_key("plain:16").report.per_query["MRR@10"] != result.by_key("plain:0").report.per_query["MRR@10"]
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["extra_comparisons"] and data["extra_comparisons"][0]["setting"] == "xqg:0"
    assert "xQG vs no xQG at the same training size" in data["markdown"]
    assert {Path(f["path"]).name for f in data["provenance"]["data_files"]} >= {"train.jsonl", "q.ru.jsonl", "qrels.trec"}
    # a rerun with the same settings reuses every checkpoint and gives the same numbers
    again, _ = run_experiment("finetune", inputs, out=out, train=str(train_file), sizes="8,16", batch_size=4, lr=1e-3)
    assert again.provenance["training"]["16"]["reused_checkpoint"] is True
    assert again.by_key("xqg:16").report.per_query == result.by_key("xqg:16").report.per_query
    with pytest.raises(XQGError, match="has 40"):
        run_experiment("finetune", inputs, out=out, train=str(train_file), sizes="100")


def test_cli_finetune(tmp_path, ft_collection, train_file, capsys):
    out = tmp_path / "cli-ft"
    rc = main(["experiment", "finetune", "--index", str(ft_collection["index"]), "--eval-queries", str(ft_collection["queries"]),
               "--qrels", str(ft_collection["qrels"]), "--train", str(train_file), "--sizes", "0", "--alpha", "0.3",
               "--out", str(out), "--no-png", "--quiet", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in data["results"]] == ["plain:0", "xqg:0"]
    assert data["settings"]["xqg_spec"]["alpha"] == 0.3 and (out / "results.md").exists()


def test_train_top_layers_only(train_file, tiny_e5_encoder_dir, tmp_path):
    cfg = TrainConfig(base=str(tiny_e5_encoder_dir), out=tmp_path / "top", batch_size=8, learning_rate=5e-3, train_layers=1, max_steps=2)
    res = train_encoder(cfg, read_training_file(train_file))
    before, after = _weights(Path(tiny_e5_encoder_dir)), _weights(res.path)
    changed = {k for k in before if k in after and not np.array_equal(before[k], after[k])}
    assert changed and all(k.startswith("encoder.layer.1.") for k in changed)  # the tiny model has layers 0 and 1


def test_finetune_incremental_continues_checkpoints(tmp_path, tiny_corpus, tiny_e5_encoder_dir, train_file):
    from xqg_tui.experiments import Inputs, run_experiment
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.io.corpus import write_corpus_jsonl
    from xqg_tui.io.qrels import write_qrels
    from xqg_tui.io.queries import write_queries_jsonl
    from xqg_tui.types import Query

    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(corpus, tiny_corpus[:8])
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps({"docid": p.docid, "generated_queries": {"ru": [f"{_WORDS['ru'][i]} {_WORDS['ru'][i + 1]}"]}},
                                      ensure_ascii=False) + "\n" for i, p in enumerate(tiny_corpus[:8])), encoding="utf-8")
    index = tmp_path / "index"
    build_index(BuildConfig(corpus=corpus, out=index, encoder=str(tiny_e5_encoder_dir), generator="none", import_generated=gen, langs=["ru"]))
    qs = [Query(f"e{i}", f"{_WORDS['ar'][i]} {_WORDS['ar'][i + 2]}", "ar") for i in range(8)]
    write_queries_jsonl(tmp_path / "q.jsonl", qs)
    write_qrels(tmp_path / "qrels.trec", {q.qid: {tiny_corpus[i].docid: 1} for i, q in enumerate(qs)})
    inputs = Inputs.make(index, [tmp_path / "q.jsonl"], tmp_path / "qrels.trec", alpha=0.3, seed=0)
    result, _ = run_experiment("finetune", inputs, out=tmp_path / "res", train=str(train_file), sizes="0,8,16",
                               batch_size=4, incremental=True, train_layers=1)
    t = result.provenance["training"]
    assert t["8"]["continued_from"] is None and t["16"]["continued_from"].endswith("size-8")
    assert t["8"]["steps"] == 2 and t["16"]["steps"] == 2  # 16 continues with the 8 new examples only
    saved = json.loads((tmp_path / "res" / "checkpoints" / "size-16" / "xqg_training.json").read_text(encoding="utf-8"))
    assert saved["data"]["examples_in_this_run"] == 8 and saved["config"]["schedule"] == "constant"
