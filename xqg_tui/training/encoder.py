"""Contrastive (InfoNCE) fine-tuning of a dense encoder, Tevatron style.

Training data is Tevatron's JSONL layout, one example a line::

    {"query_id": "q1", "query": "...",
     "positive_passages": [{"docid": "d1", "title": "...", "text": "..."}],
     "negative_passages": [{"docid": "d7", "title": "...", "text": "..."}, ...]}

Each step takes ``batch_size`` examples; every query is scored against every
passage of the batch (one positive per example plus up to ``hard_negatives`` of
its negatives), so the other examples' passages are in-batch negatives. The loss
is cross-entropy over those scores divided by a temperature. Passages are
de-duplicated by docid within a batch: when two queries share a positive (the
questions of one paragraph, or one question in several languages) the passage
is one column, the target of both, and never a negative for either.

The model is run exactly as :class:`xqg_tui.models.encoder.Encoder` runs it at
search time (same prefixes, passage template, pooling, normalisation, lengths),
so a checkpoint plugs straight into ``xqg build --encoder FOLDER``. Checkpoints
are transformers folders with safetensors weights; the conventions go into the
``"xqg"`` section of ``config.json`` and the run's settings into
``xqg_training.json``.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import InputError, XQGError
from ..types import Passage

Progress = Callable[[int, int, float], None]  # (step, total steps, loss)

# Small sentence-transformers files worth carrying over so other tools read the conventions too.
_CARRY_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")


@dataclass(frozen=True)
class TrainExample:
    query_id: str
    query: str
    positives: tuple[Passage, ...]
    negatives: tuple[Passage, ...] = ()


def _passage(obj: Any, path: Path, lineno: int, field_name: str) -> Passage:
    if isinstance(obj, str):
        return Passage("", "", obj)
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
        raise InputError(path, lineno, "each passage needs a non-empty \"text\"", field=field_name)
    return Passage(str(obj.get("docid", obj.get("id", "")) or ""), str(obj.get("title") or ""), obj["text"])


def read_training_file(path: str | Path, limit: int | None = None) -> list[TrainExample]:
    """Read Tevatron training JSONL; a malformed line is an InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    out: list[TrainExample] = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, lineno, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(path, lineno, "each line must be a JSON object")
            query = row.get("query")
            if not isinstance(query, str) or not query.strip():
                raise InputError(path, lineno, "missing or empty \"query\"", field="query")
            pos = row.get("positive_passages")
            if not isinstance(pos, list) or not pos:
                raise InputError(path, lineno, "needs a non-empty \"positive_passages\" list", field="positive_passages")
            neg = row.get("negative_passages") or []
            if not isinstance(neg, list):
                raise InputError(path, lineno, "\"negative_passages\" must be a list", field="negative_passages")
            out.append(TrainExample(
                str(row.get("query_id", lineno)),
                query,
                tuple(_passage(p, path, lineno, "positive_passages") for p in pos),
                tuple(_passage(p, path, lineno, "negative_passages") for p in neg),
            ))
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise InputError(path, None, "no training examples")
    return out


def write_training_file(path: str | Path, examples: Iterable[TrainExample]) -> int:
    from ..io.atomic import atomic_write_text

    def p(x: Passage) -> dict[str, str]:
        return {"docid": x.docid, "title": x.title, "text": x.text}

    lines = [json.dumps({"query_id": e.query_id, "query": e.query, "positive_passages": [p(x) for x in e.positives],
                         "negative_passages": [p(x) for x in e.negatives]}, ensure_ascii=False) for e in examples]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def subset(examples: Sequence[TrainExample], size: int, seed: int) -> list[TrainExample]:
    """The first ``size`` examples of one seeded shuffle: growing sizes are nested."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    if size > len(examples):
        raise XQGError(f"asked for {size} training examples but the file has {len(examples)}")
    return [examples[i] for i in order[:size]]


@dataclass
class TrainConfig:
    base: str  # encoder spec: offline, a folder, a hub id
    out: Path
    epochs: float = 1.0
    batch_size: int = 16
    hard_negatives: int = 1  # per query, when the example has negatives
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    temperature: float | None = None  # None: 0.05 for normalised encoders, 1.0 otherwise (Tevatron's default)
    seed: int = 0
    max_steps: int | None = None
    max_query_length: int = 32
    max_passage_length: int = 128
    freeze_embeddings: bool = True  # the 96M-row vocabulary of E5/mBERT: slow on CPU, overfits rare tokens
    train_layers: int | None = None  # train only the top N transformer layers (backward stops there: faster on CPU)
    schedule: str = "linear"  # linear decay after warm-up, or constant (for training continued in pieces)
    grad_clip: float = 1.0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.batch_size < 2:
            raise XQGError("--batch-size must be >= 2 (in-batch negatives need other examples)")
        if self.epochs <= 0:
            raise XQGError("--epochs must be > 0")
        if self.hard_negatives < 0:
            raise XQGError("--hard-negatives must be >= 0")
        if self.learning_rate <= 0:
            raise XQGError("--lr must be > 0")
        if self.train_layers is not None and self.train_layers < 0:
            raise XQGError("--train-layers must be >= 0")
        if self.schedule not in ("linear", "constant"):
            raise XQGError("--schedule must be linear or constant")


@dataclass
class TrainResult:
    path: Path
    examples: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # mean loss per logged window
    temperature: float = 1.0


def _pick(examples: Sequence[TrainExample], rng: random.Random, hard: int) -> tuple[list[str], list[Passage], list[int]]:
    """Queries, the unique passages of the batch and each query's target column."""
    cols: dict[tuple[str, str, str], int] = {}
    passages: list[Passage] = []

    def key(p: Passage) -> tuple[str, str, str]:
        return (p.docid, "", "") if p.docid else ("", p.title, p.text)

    def add(p: Passage) -> int:
        k = key(p)
        if k not in cols:
            cols[k] = len(passages)
            passages.append(p)
        return cols[k]

    targets = [add(rng.choice(e.positives)) for e in examples]
    for e in examples:
        pos_keys = {key(p) for p in e.positives}
        negs = [p for p in e.negatives if key(p) not in pos_keys]
        if negs and hard:
            picks = rng.sample(negs, hard) if len(negs) >= hard else [rng.choice(negs) for _ in range(hard)]
            for p in picks:
                add(p)
    return [e.query for e in examples], passages, targets


class _Forward:
    """The encoder's own input formatting and pooling, with gradients."""

    def __init__(self, enc: Any, max_query_length: int, max_passage_length: int) -> None:
        self.enc = enc
        self.ql = max_query_length
        self.pl = max_passage_length

    def _embed(self, inputs: list[Any], max_length: int):
        import torch

        from ..models.encoder import pool

        tok = self.enc.tokenizer
        if inputs and isinstance(inputs[0], tuple):
            batch = tok([a for a, _ in inputs], [b for _, b in inputs], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        else:
            batch = tok(inputs, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        feed = {"input_ids": batch["input_ids"].to(self.enc.device), "attention_mask": batch["attention_mask"].to(self.enc.device)}
        if self.enc._accepts_token_types and "token_type_ids" in batch:
            feed["token_type_ids"] = batch["token_type_ids"].to(self.enc.device)
        hidden = self.enc.model(**feed).last_hidden_state
        out = pool(hidden, feed["attention_mask"], self.enc.pooling)
        if self.enc.normalize:
            out = torch.nn.functional.normalize(out, p=2.0, dim=-1)
        return out

    def queries(self, texts: list[str]):
        return self._embed([f"{self.enc.query_prefix}{t}" for t in texts], self.ql)

    def passages(self, passages: list[Passage]):
        from ..models.encoder import _format_passage

        items: list[Any] = []
        for p in passages:
            f = _format_passage(p, self.enc.passage_template)
            items.append((f"{self.enc.passage_prefix}{f[0]}", f[1]) if isinstance(f, tuple) else f"{self.enc.passage_prefix}{f}")
        return self._embed(items, self.pl)


def _freeze_below(model: Any, top: int) -> None:
    """Freeze the embeddings and all but the top ``top`` transformer layers; weights
    outside the layer stack (a final LayerNorm) keep their setting. Gradients then
    stop at the lowest trainable layer, which is what makes this cheaper."""
    layers = None
    for path in ("encoder.layer", "layer", "block", "encoder.block"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "__len__"):
            layers = list(obj)
            break
    if layers is None:
        raise XQGError(f"--train-layers: cannot find the transformer layers of a {type(model).__name__}")
    in_layers = {id(p) for layer in layers for p in layer.parameters()}
    keep = {id(p) for layer in layers[max(0, len(layers) - top):] for p in layer.parameters()} if top else set()
    for name, p in model.named_parameters():
        if id(p) in keep:
            continue
        if id(p) in in_layers or "embed" in name or name.startswith("shared"):
            p.requires_grad_(False)


def save_checkpoint(enc: Any, folder: Path, info: dict[str, Any]) -> Path:
    """A transformers folder (safetensors) that Encoder.load reads with the same conventions."""
    from ..io.atomic import atomic_write_json
    from ..models.encoder import quiet_transformers

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with quiet_transformers():
        enc.model.save_pretrained(tmp, safe_serialization=True)
        enc.tokenizer.save_pretrained(tmp)
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["xqg"] = {
        "pooling": enc.pooling,
        "normalize": enc.normalize,
        "query_prefix": enc.query_prefix,
        "passage_prefix": enc.passage_prefix,
        "passage_template": enc.passage_template,
    }
    atomic_write_json(config_path, config)
    src = getattr(enc, "folder", None)
    if src is not None:
        for name in _CARRY_FILES:
            if (Path(src) / name).is_file():
                shutil.copy2(Path(src) / name, tmp / name)
        if (Path(src) / "1_Pooling").is_dir():
            shutil.copytree(Path(src) / "1_Pooling", tmp / "1_Pooling")
    atomic_write_json(tmp / "xqg_training.json", info)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def train_encoder(config: TrainConfig, examples: Sequence[TrainExample], progress: Progress | None = None,
                  data_info: dict[str, Any] | None = None) -> TrainResult:
    """Fine-tune ``config.base`` on ``examples`` and save it to ``config.out``."""
    import numpy as np
    import torch

    from ..models.encoder import Encoder

    if len(examples) < 2:
        raise XQGError("need at least 2 training examples (in-batch negatives)")
    t0 = time.perf_counter()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    enc = Encoder.load(config.base, device=config.device, dtype="float32",
                       max_query_length=config.max_query_length, max_passage_length=config.max_passage_length)
    model = enc.model
    temperature = config.temperature if config.temperature is not None else (0.05 if enc.normalize else 1.0)
    if config.freeze_embeddings:
        emb = model.get_input_embeddings()
        if emb is not None:
            emb.weight.requires_grad_(False)
    if config.train_layers is not None:
        _freeze_below(model, config.train_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise XQGError("nothing to train: every weight is frozen")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    batch = min(config.batch_size, len(examples))
    per_epoch = max(1, len(examples) // batch)  # drop the last partial batch: every step has full in-batch negatives
    total = max(1, int(math.ceil(per_epoch * config.epochs)))
    if config.max_steps is not None:
        total = min(total, int(config.max_steps))
    warmup = int(total * config.warmup_ratio)

    def lr_at(step: int) -> float:  # linear warm-up, then linear decay to 0 (Tevatron / HF default) or constant
        if step < warmup:
            return (step + 1) / max(1, warmup)
        if config.schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_at)
    fwd = _Forward(enc, config.max_query_length, config.max_passage_length)
    rng = random.Random(config.seed)
    losses: list[float] = []
    window: list[float] = []
    model.train()
    step = 0
    epoch = 0
    while step < total:
        order = list(range(len(examples)))
        random.Random(config.seed + epoch).shuffle(order)
        for start in range(0, per_epoch * batch, batch):
            if step >= total:
                break
            chunk = [examples[i] for i in order[start:start + batch]]
            queries, passages, targets = _pick(chunk, rng, config.hard_negatives)
            q = fwd.queries(queries)
            p = fwd.passages(passages)
            scores = q @ p.T / temperature
            loss = torch.nn.functional.cross_entropy(scores, torch.tensor(targets, device=scores.device))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optim.step()
            sched.step()
            step += 1
            window.append(float(loss.detach()))
            if len(window) == 10 or step == total:
                losses.append(sum(window) / len(window))
                window = []
            if progress is not None:
                progress(step, total, float(loss.detach()))
        epoch += 1
    model.eval()
    seconds = time.perf_counter() - t0
    info = {
        "base": config.base,
        "base_fingerprint": {k: v for k, v in enc.fingerprint().items() if k in ("model_id", "source", "weights_sha256")},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "temperature": temperature,
        "examples": len(examples),
        "steps": step,
        "loss_every_10_steps": [round(x, 5) for x in losses],
        "seconds": round(seconds, 1),
        "data": data_info or {},
        "torch": torch.__version__,
    }
    save_checkpoint(enc, config.out, info)
    return TrainResult(config.out, len(examples), step, seconds, losses, temperature)
