"""Training the demo query generator (``xqg train generator``).

The model is a standard transformers ``EncoderDecoderModel``:

* encoder: the first ``encoder_layers`` layers of a BERT-style encoder (by default
  the offline multilingual-e5-small), frozen. Its states for every training prompt
  are computed once and cached (float16), so training only runs the decoder;
* decoder: a ``BertLMHeadModel`` (``decoder_layers`` layers, hidden size = the
  encoder's, causal self-attention + cross-attention), warm-started from the
  encoder's first layers (cross-attention random), with the encoder's word
  embeddings (frozen) tied to the output layer. The output is restricted to the
  token ids that occur in the training targets: the trainer computes the softmax
  over those rows only, and the saved model sets ``cls.predictions.bias`` to
  :data:`BLOCKED_BIAS` for every other id, so the standard class behaves the same.

Training pairs (prompt = ``build_prompt(lang, title, passage)``, target = a question):

* ``translation``: XOR-TyDi question translations ``LANG-en/{en,LANG}.txt``; the
  English question is the passage, the LANG question the target (teaches writing
  questions in each of the seven languages);
* ``xquad``: XQuAD's English paragraphs -> their questions in the chosen languages
  (passage-to-question; every ``holdout_every``-th paragraph is held out);
* ``demo``: the demo collection's *training* queries (in-domain), repeated
  ``demo_repeat`` times per epoch. The evaluation queries are never read.

Everything is deterministic given the seed. Checkpoints (the trainable decoder
weights, safetensors, and the optimizer state, ``optimizer.safetensors``) are written every
``checkpoint_minutes`` and at the end, so a stopped run loses little; ``resume``
continues from the checkpoint in ``out_dir`` (weights, step, and the optimizer state
when present; the learning-rate schedule restarts with a short warm-up over the new
time budget, and batches are drawn in a new order); :func:`export_assets` turns a checkpoint into the small
asset files :mod:`xqg_tui.models.demo_generator` assembles into a model folder.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xqg_tui.errors import XQGError
from xqg_tui.io.atomic import atomic_write_bytes
from xqg_tui.models.generator import build_prompt

PAPER_LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
XQUAD_LANGS = ("ar", "ru", "en", "de", "es", "tr", "vi", "ro")
BLOCKED_BIAS = -10000.0
DECODER_MAX_POSITIONS = 128
SKIP_IN_HEAD = ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight",
                "cls.predictions.decoder.bias", "cls.predictions.bias")

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    out_dir: str
    encoder: str = "offline"
    data_dir: str | None = None  # ../shared/data (xor-tydi/, xquad/)
    demo_dir: str | None = None  # assets/demo
    langs: tuple[str, ...] = PAPER_LANGS
    xquad_langs: tuple[str, ...] = XQUAD_LANGS
    translations_per_lang: int = 3000
    holdout_every: int = 6
    demo_repeat: int = 3
    xquad_repeat: int = 1  # weight of the XQuAD passage->question pairs per epoch
    translation_repeat: int = 1  # weight of the XOR-TyDi translation pairs per epoch
    resume: bool = False  # continue from out_dir's checkpoint (decoder, optimizer state, step)
    encoder_layers: int = 6
    decoder_layers: int = 4
    max_source_len: int = 256
    max_target_len: int = 40
    batch_tokens: int = 1800  # target tokens per batch (approx.)
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    label_smoothing: float = 0.05
    min_token_count: int = 1  # output vocabulary: target tokens seen this often (+ all demo target tokens)
    minutes: float = 45.0
    max_steps: int | None = None
    checkpoint_minutes: float = 5.0
    threads: int | None = None
    seed: int = 0
    encode_batch: int = 32
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pair:
    source: int  # index into the prompt list
    target: str
    kind: str
    lang: str


# ----------------------------------------------------------------------------- data


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def collect_pairs(cfg: TrainConfig, log: Log = print) -> tuple[list[str], list[Pair], dict[str, Any]]:
    """The prompts (deduplicated) and (prompt, target) pairs of the training mix."""
    rng = random.Random(cfg.seed)
    prompts: list[str] = []
    index: dict[str, int] = {}
    pairs: list[Pair] = []
    stats: dict[str, Any] = {}

    def prompt_id(text: str) -> int:
        if text not in index:
            index[text] = len(prompts)
            prompts.append(text)
        return index[text]

    if cfg.demo_dir:
        demo = Path(cfg.demo_dir)
        passages = {}
        for line in (demo / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                passages[row.get("docid") or row["id"]] = row
        n = 0
        # only the training queries; queries.eval.jsonl is never opened
        for line in (demo / "queries.train.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            lang = row["lang"].strip()
            p = passages.get(row["docid"])
            if p is None or lang not in cfg.langs:
                continue
            pid = prompt_id(build_prompt(lang, p.get("title", ""), p["text"]))
            pairs.append(Pair(pid, row["question"].strip(), "demo", lang))
            n += 1
        stats["demo_pairs"] = n
    if cfg.data_dir:
        data = Path(cfg.data_dir)
        tdir = data / "xor-tydi" / "translations"
        n = 0
        for lang in cfg.langs:
            folder = tdir / f"{lang}-en"
            if not folder.is_dir():
                continue
            en, xx = _read_lines(folder / "en.txt"), _read_lines(folder / f"{lang}.txt")
            if len(en) != len(xx):
                raise XQGError(f"{folder}: en.txt and {lang}.txt have different line counts")
            rows = [(a.strip(), b.strip()) for a, b in zip(en, xx) if a.strip() and b.strip()]
            rng.shuffle(rows)
            for a, b in rows[: cfg.translations_per_lang]:
                pairs.append(Pair(prompt_id(build_prompt(lang, "", a)), b, "translation", lang))
                n += 1
        stats["translation_pairs"] = n
        xdir = data / "xquad"
        n = 0
        held = 0
        if (xdir / "xquad.en.json").is_file():
            docs = {}
            for lang in cfg.xquad_langs:
                path = xdir / f"xquad.{lang}.json"
                if path.is_file():
                    docs[lang] = json.loads(path.read_text(encoding="utf-8"))
            en = json.loads((xdir / "xquad.en.json").read_text(encoding="utf-8"))
            questions: dict[str, dict[str, str]] = {}
            for lang, d in docs.items():
                for art in d["data"]:
                    for para in art["paragraphs"]:
                        for qa in para["qas"]:
                            questions.setdefault(qa["id"], {})[lang] = qa["question"].strip()
            k = 0
            for art in en["data"]:
                title = art["title"].replace("_", " ")
                for para in art["paragraphs"]:
                    k += 1
                    if cfg.holdout_every and k % cfg.holdout_every == 0:
                        held += 1
                        continue
                    for lang in docs:
                        pid = None
                        for qa in para["qas"]:
                            q = questions.get(qa["id"], {}).get(lang)
                            if q:
                                if pid is None:
                                    pid = prompt_id(build_prompt(lang, title, para["context"]))
                                pairs.append(Pair(pid, q, "xquad", lang))
                                n += 1
        stats["xquad_pairs"] = n
        stats["xquad_heldout_paragraphs"] = held
    stats["prompts"] = len(prompts)
    log(f"training mix: {stats}")
    if not pairs:
        raise XQGError("no training pairs found: give --data-dir and/or --demo-dir")
    return prompts, pairs, stats


def xquad_heldout(data_dir: Path, holdout_every: int = 6) -> list[dict[str, Any]]:
    """The held-out XQuAD paragraphs (English) with their questions per language."""
    xdir = Path(data_dir) / "xquad"
    en = json.loads((xdir / "xquad.en.json").read_text(encoding="utf-8"))
    out = []
    k = 0
    for art in en["data"]:
        for para in art["paragraphs"]:
            k += 1
            if holdout_every and k % holdout_every == 0:
                out.append({"docid": f"xquad-{k}", "title": art["title"].replace("_", " "),
                            "text": para["context"], "qa_ids": [qa["id"] for qa in para["qas"]]})
    return out


# ----------------------------------------------------------------------------- language tokens

LANGUAGE_TOKENS_FILE = "language_tokens.json"
# Scripts (first word of the Unicode character name) a language's questions are written in.
LANGUAGE_SCRIPTS = {
    "ar": {"ARABIC"}, "bn": {"BENGALI"}, "fi": {"LATIN"}, "ru": {"CYRILLIC"}, "te": {"TELUGU"},
    "ko": {"HANGUL"},  # no CJK: Korean questions practically never use hanja; the failure mode is Japanese
    "ja": {"HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "CJK", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH"},
}


def token_scripts(piece: str) -> set[str]:
    """The scripts of a token's letters, marks and non-ASCII digits (ASCII digits and
    punctuation have none). Vowel signs count (a Telugu vowel sign is Telugu)."""
    import unicodedata

    out: set[str] = set()
    for ch in piece.replace("\u2581", ""):
        if ch.isascii() and not ch.isalpha():
            continue
        if unicodedata.category(ch)[0] not in "LMN":
            continue  # punctuation, symbols, spaces: shared
        try:
            out.add(unicodedata.name(ch).split(" ", 1)[0])
        except ValueError:
            out.add("UNKNOWN")
    return out


def language_token_sets(pairs: Sequence[Pair], tgt_ids: Sequence[Sequence[int]], tokenizer: Any,
                        allowed: Sequence[int], eos: int) -> dict[str, list[int]]:
    """Per language, the output ids its queries may use: the tokens seen in that
    language's training targets (within the model's output vocabulary) whose letters
    are in the language's scripts or Latin (names, acronyms; Finnish: Latin only), plus
    the letterless tokens (digits, punctuation) seen in its targets or plain ASCII,
    plus the end token."""
    allowed_set = set(int(t) for t in allowed)
    seen: dict[str, set[int]] = {}
    for p, ids in zip(pairs, tgt_ids):
        seen.setdefault(p.lang, set()).update(int(t) for t in ids)
    pieces = {t: tokenizer.convert_ids_to_tokens(t) for t in allowed_set}
    scripts = {t: token_scripts(piece or "") for t, piece in pieces.items()}
    ascii_only = {t for t, piece in pieces.items() if piece and piece.replace("\u2581", "").isascii()}
    out: dict[str, list[int]] = {}
    for lang in sorted(seen):
        ok = LANGUAGE_SCRIPTS.get(lang)
        if ok is None:
            continue
        ok = ok | {"LATIN"}
        keep = {eos}
        for t in allowed_set:
            sc = scripts[t]
            if sc:
                if t in seen[lang] and sc <= ok:
                    keep.add(t)
            elif t in seen[lang] or t in ascii_only:
                keep.add(t)
        out[lang] = sorted(keep & (allowed_set | {eos}))
    return out


def write_language_tokens(path: Path, sets: dict[str, list[int]], vocab_size: int,
                          decoding: dict[str, Any] | None = None) -> None:
    """``decoding``: recommendations QueryGenerator reads from this file (``copy_bias``)."""
    from xqg_tui.io.atomic import atomic_write_json

    atomic_write_json(Path(path), {
        "format": 1,
        "kind": "xqg-tui language tokens",
        "description": "per language, the output token ids a generated query may use (decoding constraint; "
                       "derived from the training targets of that language, its scripts + Latin names, "
                       "digits and punctuation)",
        "vocab_size": int(vocab_size),
        "decoding": dict(decoding or {}),
        "languages": {k: v for k, v in sorted(sets.items())},
    }, indent=None)


def language_tokens_for_training(train_dir: Path, encoder_folder: Path) -> dict[str, list[int]]:
    """Recompute the language token sets of a training folder from its saved config
    (for checkpoints written before the trainer saved them)."""
    from safetensors import safe_open
    from transformers import AutoTokenizer

    state = json.loads((Path(train_dir) / "train_state.json").read_text(encoding="utf-8"))
    conf = dict(state["config"])
    for k in ("langs", "xquad_langs"):
        conf[k] = tuple(conf[k])
    known = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in conf.items() if k in known})
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_folder))
    _, pairs, _ = collect_pairs(cfg, log=lambda m: None)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    tgt_ids = [tokenizer(p.target, add_special_tokens=False)["input_ids"][: cfg.max_target_len] + [eos] for p in pairs]
    with safe_open(str(Path(train_dir) / "decoder.safetensors"), "pt") as f:
        allowed = f.get_tensor("xqg.allowed_ids").tolist()
    return language_token_sets(pairs, tgt_ids, tokenizer, allowed, eos)


# ----------------------------------------------------------------------------- model


def _encoder_folder(spec: str) -> Path:
    from xqg_tui.models.registry import resolve_encoder

    return Path(resolve_encoder(spec))


def load_encoder(folder: Path, layers: int) -> torch.nn.Module:
    from transformers import BertModel

    from xqg_tui.models.encoder import quiet_transformers

    with quiet_transformers():
        model = BertModel.from_pretrained(str(folder), num_hidden_layers=layers, add_pooling_layer=False, use_safetensors=True,
                                          dtype=torch.float32)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def encode_prompts(encoder: torch.nn.Module, tokenizer: Any, prompts: Sequence[str], max_len: int,
                   batch: int = 32, log: Log = print) -> tuple[np.ndarray, np.ndarray]:
    """Encoder states of every prompt, concatenated: (total_tokens, H) float16 + offsets."""
    ids = tokenizer(list(prompts), truncation=True, max_length=max_len, padding=False)["input_ids"]
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    hidden = encoder.config.hidden_size
    states = np.zeros((int(offsets[-1]), hidden), dtype=np.float16)
    order = np.argsort(-lengths, kind="stable")
    t0 = time.time()
    done = 0
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            rows = order[s : s + batch]
            width = int(lengths[rows].max())
            inp = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, j in enumerate(rows):
                inp[r, : lengths[j]] = torch.tensor(ids[j])
                mask[r, : lengths[j]] = 1
            out = encoder(input_ids=inp, attention_mask=mask).last_hidden_state.numpy()
            for r, j in enumerate(rows):
                states[offsets[j] : offsets[j + 1]] = out[r, : lengths[j]]
            done += len(rows)
            if (s // batch) % 20 == 0:
                log(f"encoded {done}/{len(order)} prompts ({time.time() - t0:.0f} s)")
    return states, offsets


def _encode_with_reuse(out: Path, prompts: list[str], enc_folder: Path, tokenizer: Any, cfg: TrainConfig,
                       log: Log) -> tuple[np.ndarray, np.ndarray]:
    """Encode the prompts, reusing the states of earlier caches in ``out`` (same encoder,
    layers and truncation) for prompts they hold."""
    known: dict[str, np.ndarray] = {}
    for meta_path in sorted(out.glob("prompts-*.json")):
        key = meta_path.stem.split("-", 1)[1]
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if (meta["encoder"], meta["layers"], meta["max_len"]) != (str(enc_folder), cfg.encoder_layers,
                                                                       cfg.max_source_len):
                continue
            st = np.load(out / f"states-{key}.npy", allow_pickle=False, mmap_mode="r")
            off = np.load(out / f"offsets-{key}.npy", allow_pickle=False)
        except (OSError, ValueError, KeyError):
            continue
        wanted = set(prompts)
        for j, text in enumerate(meta["prompts"]):
            if text in wanted and text not in known:
                known[text] = np.asarray(st[off[j] : off[j + 1]])
    todo = [p for p in prompts if p not in known]
    log(f"encoder states: {len(prompts) - len(todo)} reused, {len(todo)} to encode")
    if todo:
        encoder = load_encoder(enc_folder, cfg.encoder_layers)
        st, off = encode_prompts(encoder, tokenizer, todo, cfg.max_source_len, cfg.encode_batch, log)
        del encoder
        for j, text in enumerate(todo):
            known[text] = st[off[j] : off[j + 1]]
    lengths = np.array([len(known[p]) for p in prompts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    states = np.concatenate([known[p] for p in prompts]).astype(np.float16)
    return states, offsets


def decoder_config(encoder_config: Any, layers: int, bos: int, eos: int) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=encoder_config.vocab_size,
        hidden_size=encoder_config.hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=encoder_config.num_attention_heads,
        intermediate_size=encoder_config.intermediate_size,
        hidden_act=encoder_config.hidden_act,
        max_position_embeddings=DECODER_MAX_POSITIONS,
        type_vocab_size=encoder_config.type_vocab_size,
        layer_norm_eps=encoder_config.layer_norm_eps,
        pad_token_id=encoder_config.pad_token_id,
        bos_token_id=bos,
        eos_token_id=eos,
        is_decoder=True,
        add_cross_attention=True,
        tie_word_embeddings=True,
    )


def build_decoder(encoder_folder: Path, layers: int, seed: int, bos: int, eos: int) -> torch.nn.Module:
    """A BertLMHeadModel warm-started from the encoder checkpoint's embeddings and
    first ``layers`` layers; word embeddings frozen (tied to the output)."""
    from safetensors import safe_open
    from transformers import AutoConfig, BertLMHeadModel

    enc_cfg = AutoConfig.from_pretrained(str(encoder_folder))
    torch.manual_seed(seed)
    model = BertLMHeadModel(decoder_config(enc_cfg, layers, bos, eos))
    state = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    with safe_open(str(encoder_folder / "model.safetensors"), "pt") as f:
        for key in f.keys():
            name = key[5:] if key.startswith("bert.") else key
            target = "bert." + name
            if target not in state:
                continue
            t = f.get_tensor(key).float()
            if name == "embeddings.position_embeddings.weight":
                t = t[:DECODER_MAX_POSITIONS]
            if t.shape == state[target].shape:
                new[target] = t
    model.load_state_dict(new, strict=False)
    model.tie_weights()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    with torch.no_grad():
        model.cls.predictions.bias.zero_()
    return model


def trainable_state(decoder: torch.nn.Module, allowed: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the assets ship: every decoder weight except the (encoder-provided) word
    embeddings and the full bias; the allowed ids and their bias instead."""
    out = {k: v.detach().clone().contiguous() for k, v in decoder.state_dict().items() if k not in SKIP_IN_HEAD}
    out["xqg.allowed_ids"] = allowed.to(torch.int32).clone()
    out["xqg.allowed_bias"] = decoder.cls.predictions.bias.detach()[allowed].clone()
    return out


OPTIMIZER_FILE = "optimizer.safetensors"


def save_optimizer_state(opt: torch.optim.Optimizer, step: int, path: Path) -> None:
    """The optimizer state as safetensors (never a pickle): every tensor under
    ``state.<param>.<name>``, the rest (param groups, plain numbers) as JSON metadata.
    Written atomically, so a crash leaves the old state."""
    from safetensors.torch import save

    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, entry in sd["state"].items():
        for name, value in entry.items():
            key = f"state.{pid}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    meta = {"step": str(step), "param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def load_optimizer_state(path: Path) -> tuple[int, dict[str, Any]]:
    """(step, optimizer state dict) from :func:`save_optimizer_state`'s file."""
    from safetensors import safe_open

    state: dict[int, dict[str, Any]] = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        for key in f.keys():
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = f.get_tensor(key)
    for key, value in json.loads(meta.get("scalars", "{}")).items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    # JSON has no tuples; torch keeps e.g. ``betas`` as one, ``params`` as a list.
    groups = [{k: (v if k == "params" or not isinstance(v, list) else tuple(v)) for k, v in g.items()}
              for g in json.loads(meta["param_groups"])]
    return int(meta.get("step", -1)), {"state": state, "param_groups": groups}


def resume_checkpoint(out: Path, decoder: torch.nn.Module, opt: torch.optim.Optimizer, allowed: torch.Tensor,
                      log: Log = print) -> tuple[int, int, float | None, list[dict[str, Any]]]:
    """Load the checkpoint in ``out`` into ``decoder`` (and ``opt`` when its state was
    saved); returns (step, epoch, loss_ema, history). The output vocabulary must be the
    same as the checkpoint's (same training targets)."""
    from safetensors.torch import load_file

    path = out / "decoder.safetensors"
    if not path.is_file():
        raise XQGError(f"--resume: no checkpoint {path}")
    state = load_file(str(path))
    ids = state.pop("xqg.allowed_ids").long()
    bias = state.pop("xqg.allowed_bias").float()
    if ids.shape != allowed.shape or not torch.equal(ids, allowed):
        raise XQGError(f"--resume: the checkpoint in {out} has a different output vocabulary "
                       f"({len(ids)} ids vs {len(allowed)}); resume with the same training data and options")
    missing, unexpected = decoder.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if k not in SKIP_IN_HEAD and "position_ids" not in k]
    if missing or unexpected:
        raise XQGError(f"--resume: the checkpoint in {out} does not fit this decoder "
                       f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]}); use the same layer options")
    with torch.no_grad():
        decoder.cls.predictions.bias[allowed] = bias
    meta = json.loads((out / "train_state.json").read_text(encoding="utf-8"))
    step = int(meta.get("step", 0))
    opt_path = out / OPTIMIZER_FILE
    if opt_path.is_file():
        from safetensors import SafetensorError

        try:
            saved_step, saved = load_optimizer_state(opt_path)
        except (OSError, ValueError, KeyError, SafetensorError) as e:
            saved_step, saved = -1, None
            log(f"{opt_path.name} cannot be read ({e}): fresh optimizer state")
        if saved is not None and saved_step == step:
            opt.load_state_dict(saved)
            log(f"resumed optimizer state (step {step})")
        elif saved is not None:
            log(f"{opt_path.name} is from step {saved_step}, not {step}: fresh optimizer state")
    else:
        log("no optimizer state saved with the checkpoint: fresh optimizer state (warm-up again)")
    log(f"resumed from {path} at step {step} (loss {meta.get('loss_ema')})")
    return step, int(meta.get("epoch", 0)), meta.get("loss_ema"), list(meta.get("history") or [])


def restricted_logits(decoder: torch.nn.Module, hidden: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    h = decoder.cls.predictions.transform(hidden)
    weight = decoder.bert.embeddings.word_embeddings.weight[allowed]
    return F.linear(h, weight) + decoder.cls.predictions.bias[allowed]


# ----------------------------------------------------------------------------- training


def _batches(pairs: list[Pair], tgt_ids: list[list[int]], src_len: np.ndarray, batch_tokens: int,
             rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar source length, about ``batch_tokens`` target tokens
    (counting padded source positions / 8 as well, so long passages make smaller batches)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    out: list[list[int]] = []
    chunk = 4000
    for s in range(0, len(order), chunk):
        part = sorted(order[s : s + chunk], key=lambda i: src_len[pairs[i].source])
        cur: list[int] = []
        for i in part:
            cand = cur + [i]
            width_t = max(len(tgt_ids[j]) for j in cand) + 1
            width_s = max(src_len[pairs[j].source] for j in cand)
            if cur and len(cand) * (width_t + width_s / 8) > batch_tokens:
                out.append(cur)
                cur = [i]
            else:
                cur = cand
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def train_generator(cfg: TrainConfig, log: Log = print, encoder_folder: Path | None = None) -> Path:
    """Run the whole training; returns ``out_dir`` (holding ``decoder.safetensors``,
    ``train_state.json`` and the cache of encoder states)."""
    from transformers import AutoConfig, AutoTokenizer

    from xqg_tui.io.atomic import atomic_write_json

    t_start = time.time()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    enc_folder = Path(encoder_folder) if encoder_folder is not None else _encoder_folder(cfg.encoder)
    tokenizer = AutoTokenizer.from_pretrained(str(enc_folder))
    prompts, pairs, stats = collect_pairs(cfg, log)

    # --- encoder states, cached (keyed by the prompts, the encoder and its layers)
    import hashlib

    key = hashlib.sha256(json.dumps([prompts, str(enc_folder), cfg.encoder_layers, cfg.max_source_len],
                                    ensure_ascii=False).encode()).hexdigest()[:16]
    cache_states, cache_offsets = out / f"states-{key}.npy", out / f"offsets-{key}.npy"
    if cache_states.is_file() and cache_offsets.is_file():
        states = np.load(cache_states, allow_pickle=False, mmap_mode="r")
        offsets = np.load(cache_offsets, allow_pickle=False)
        log(f"encoder states from cache {cache_states.name}")
    else:
        states, offsets = _encode_with_reuse(out, prompts, enc_folder, tokenizer, cfg, log)
        from xqg_tui.io.atomic import atomic_write_json as _wj, save_npy_atomic

        save_npy_atomic(cache_offsets, offsets)
        save_npy_atomic(cache_states, states)
        _wj(out / f"prompts-{key}.json", {"encoder": str(enc_folder), "layers": cfg.encoder_layers,
                                          "max_len": cfg.max_source_len, "prompts": prompts}, indent=None)
    src_len = np.diff(offsets)
    log(f"encoder states: {len(prompts)} prompts, {int(offsets[-1])} tokens ({time.time() - t_start:.0f} s)")

    # --- targets and the output vocabulary
    # sentencepiece models (E5/XLM-R): <s> ... </s>; WordPiece BERT: [CLS] ... [SEP]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    pad = tokenizer.pad_token_id
    tgt_ids = [tokenizer(p.target, add_special_tokens=False)["input_ids"][: cfg.max_target_len] + [eos]
               for p in pairs]
    special = {i for i in (bos, pad, tokenizer.unk_token_id) if i is not None}
    from collections import Counter

    token_counts = Counter(t for ids in tgt_ids for t in ids)
    allowed_set = {t for t, c in token_counts.items() if c >= cfg.min_token_count}
    allowed_set |= {t for p, ids in zip(pairs, tgt_ids) if p.kind == "demo" for t in ids}
    allowed_set |= {eos}
    allowed_set -= special
    allowed = torch.tensor(sorted(allowed_set), dtype=torch.long)
    remap = torch.full((max(max(allowed_set), max(token_counts)) + 1,), -100, dtype=torch.long)
    remap[allowed] = torch.arange(len(allowed))
    covered = sum(c for t, c in token_counts.items() if t in allowed_set) / max(1, sum(token_counts.values()))
    log(f"target tokens covered by the output vocabulary: {covered:.4f}")
    log(f"output vocabulary: {len(allowed)} ids")
    lang_sets = language_token_sets(pairs, tgt_ids, tokenizer, allowed.tolist(), eos)
    write_language_tokens(out / LANGUAGE_TOKENS_FILE, lang_sets, len(tokenizer))
    log("language tokens: " + ", ".join(f"{k} {len(v)}" for k, v in lang_sets.items()))

    decoder = build_decoder(enc_folder, cfg.decoder_layers, cfg.seed, bos, eos)
    decoder.train()
    params = [p for p in decoder.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    n_params = sum(p.numel() for p in params)
    log(f"decoder: {n_params / 1e6:.1f}M trainable parameters")

    step = 0
    epoch = 0
    ema = None
    history: list[dict[str, Any]] = []
    prior_minutes = 0.0
    if cfg.resume:
        step, epoch, ema, history = resume_checkpoint(out, decoder, opt, allowed, log)
        try:
            old = json.loads((out / "train_state.json").read_text(encoding="utf-8"))
            prior_minutes = float(old.get("minutes_total") or old.get("minutes") or 0.0)
        except (OSError, ValueError):
            prior_minutes = 0.0
    start_step = step

    rng = random.Random(cfg.seed + 1 + step)  # resumed runs draw new batches
    repeat = {"demo": cfg.demo_repeat, "xquad": cfg.xquad_repeat, "translation": cfg.translation_repeat}
    weights = [max(0, int(repeat.get(p.kind, 1))) for p in pairs]
    epoch_pairs = [i for i, w in enumerate(weights) for _ in range(w)]
    if not epoch_pairs:
        raise XQGError("every training pair has weight 0: check --demo-repeat/--xquad-repeat/--translation-repeat")
    budget = cfg.minutes * 60.0
    t_train = time.time()
    last_ckpt = t_train

    def save(final: bool = False) -> None:
        from safetensors.torch import save as safetensors_bytes

        atomic_write_bytes(out / "decoder.safetensors", safetensors_bytes(trainable_state(decoder, allowed), metadata={"format": "pt"}))
        save_optimizer_state(opt, step, out / OPTIMIZER_FILE)
        dcfg = decoder.config.to_dict()
        atomic_write_json(out / "train_state.json", {
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "stats": stats, "step": step, "epoch": epoch, "loss_ema": ema,
            "minutes": (time.time() - t_train) / 60.0, "final": final,
            "decoder_config": dcfg, "encoder_layers": cfg.encoder_layers,
            "vocabulary": len(allowed), "history": history[-200:],
            "resumed_from_step": start_step if cfg.resume else None,
            "minutes_total": prior_minutes + (time.time() - t_train) / 60.0,
        })
        log(f"checkpoint at step {step} (loss {ema:.3f})" if ema is not None else f"checkpoint at step {step}")

    stop = False
    while not stop:
        mix = [pairs[i] for i in epoch_pairs]
        mix_ids = [tgt_ids[i] for i in epoch_pairs]
        batches = _batches(mix, mix_ids, src_len, cfg.batch_tokens, rng)
        for b in batches:
            elapsed = time.time() - t_train
            if elapsed > budget or (cfg.max_steps is not None and step >= cfg.max_steps):
                stop = True
                break
            frac = (min(1.0, elapsed / budget) if cfg.max_steps is None
                    else (step - start_step) / max(1, cfg.max_steps - start_step))
            lr = cfg.lr * min(1.0, (step - start_step + 1) / cfg.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = lr
            B = len(b)
            ws = int(max(src_len[mix[i].source] for i in b))
            wt = max(len(mix_ids[i]) for i in b)
            enc = torch.zeros((B, ws, states.shape[1]), dtype=torch.float32)
            emask = torch.zeros((B, ws), dtype=torch.long)
            dec_in = torch.full((B, wt), pad, dtype=torch.long)
            labels = torch.full((B, wt), -100, dtype=torch.long)
            dmask = torch.zeros((B, wt), dtype=torch.long)
            for r, i in enumerate(b):
                s = mix[i].source
                L = int(src_len[s])
                enc[r, :L] = torch.from_numpy(np.asarray(states[offsets[s] : offsets[s + 1]], dtype=np.float32))
                emask[r, :L] = 1
                t = mix_ids[i]
                dec_in[r, 0] = bos
                dec_in[r, 1 : len(t)] = torch.tensor(t[:-1])
                labels[r, : len(t)] = remap[torch.tensor(t)]
                dmask[r, : len(t)] = 1
            hidden = decoder.bert(input_ids=dec_in, attention_mask=dmask, encoder_hidden_states=enc,
                                  encoder_attention_mask=emask, use_cache=False).last_hidden_state
            logits = restricted_logits(decoder, hidden, allowed)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100,
                                   label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            if step % 50 == 0:
                history.append({"step": step, "loss": round(ema, 4), "min": round((time.time() - t_train) / 60, 2)})
                log(f"step {step} epoch {epoch} loss {ema:.3f} lr {lr:.2e} ({(time.time() - t_train) / 60:.1f} min)")
            if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                save()
                last_ckpt = time.time()
        else:
            epoch += 1
    save(final=True)
    log(f"done: {step} steps, {epoch} full epochs, {(time.time() - t_train) / 60:.1f} min of training")
    return out


# ----------------------------------------------------------------------------- export


def export_assets(train_dir: Path, assets_dir: Path, encoder_folder: Path | None = None,
                  encoder_spec: str = "offline", copy_bias: float = 0.0, temperature: float = 1.0) -> Path:
    """Write the shipped asset files from a training folder: ``decoder.safetensors``
    (float16; decoder layers, head transform, positions, allowed ids + their bias),
    ``config.json`` (the EncoderDecoder config; the encoder part names the layers kept),
    ``language_tokens.json`` (the per-language output ids for the decoding constraint,
    recomputed from the training data when the folder predates it, and the recommended
    ``copy_bias`` for the passage's names and numbers, 0 = off) and
    ``manifest.json`` (sha256 of each file). ``temperature`` > 1 calibrates the exported
    head: the output LayerNorm's weight and bias and the output bias are divided by it,
    which divides every logit by it exactly (sampling at temperature 1 from the exported
    model = sampling at ``temperature`` from the checkpoint); recorded in the manifest."""
    import hashlib

    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, BertConfig, EncoderDecoderConfig

    from xqg_tui.io.atomic import atomic_write_json

    train_dir, assets_dir = Path(train_dir), Path(assets_dir)
    state = json.loads((train_dir / "train_state.json").read_text(encoding="utf-8"))
    weights = load_file(str(train_dir / "decoder.safetensors"))
    if temperature <= 0:
        raise XQGError(f"temperature must be > 0 (got {temperature})")
    if temperature != 1.0:
        for key in ("cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                    "xqg.allowed_bias"):
            weights[key] = weights[key].float() / float(temperature)
    shipped = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    enc_folder = Path(encoder_folder) if encoder_folder is not None else _encoder_folder(encoder_spec)
    enc_cfg = AutoConfig.from_pretrained(str(enc_folder)).to_dict()
    for k in ("architectures", "xqg", "dtype", "torch_dtype", "transformers_version"):
        enc_cfg.pop(k, None)
    enc_cfg["num_hidden_layers"] = int(state["encoder_layers"])
    dec_cfg = dict(state["decoder_config"])
    for k in ("architectures", "dtype", "torch_dtype", "transformers_version"):
        dec_cfg.pop(k, None)
    dec_cfg.pop("model_type", None)
    enc_cfg.pop("model_type", None)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(BertConfig(**enc_cfg), BertConfig(**dec_cfg))
    config.decoder_start_token_id = dec_cfg.get("bos_token_id", 0)
    config.eos_token_id = dec_cfg.get("eos_token_id", 2)
    config.pad_token_id = dec_cfg.get("pad_token_id", 1)
    config.tie_encoder_decoder = False
    assets_dir.mkdir(parents=True, exist_ok=True)
    tmp = assets_dir / "decoder.safetensors.tmp"
    save_file(shipped, str(tmp), metadata={"format": "pt", "xqg": "demo-generator-decoder"})
    os.chmod(tmp, 0o644)  # shipped file: readable like the others
    tmp.replace(assets_dir / "decoder.safetensors")
    cfg_dict = config.to_dict()
    cfg_dict.pop("transformers_version", None)
    atomic_write_json(assets_dir / "config.json", cfg_dict)
    lang_file = train_dir / LANGUAGE_TOKENS_FILE
    if lang_file.is_file():
        lang_payload = json.loads(lang_file.read_text(encoding="utf-8"))
        write_language_tokens(assets_dir / LANGUAGE_TOKENS_FILE, lang_payload["languages"],
                              lang_payload["vocab_size"], {"copy_bias": float(copy_bias)})
    else:
        write_language_tokens(assets_dir / LANGUAGE_TOKENS_FILE, language_tokens_for_training(train_dir, enc_folder),
                              int(enc_cfg["vocab_size"]), {"copy_bias": float(copy_bias)})
    files = {}
    for name in ("decoder.safetensors", "config.json", LANGUAGE_TOKENS_FILE):
        files[name] = hashlib.sha256((assets_dir / name).read_bytes()).hexdigest()
    atomic_write_json(assets_dir / "manifest.json", {
        "format": 1,
        "kind": "xqg-tui demo generator decoder",
        "encoder": {"source": "offline (multilingual-e5-small)", "layers": int(state["encoder_layers"]),
                    "vocab_size": enc_cfg["vocab_size"], "hidden_size": enc_cfg["hidden_size"]},
        "files": files,
        "training": {k: state.get(k) for k in ("step", "epoch", "minutes", "minutes_total", "loss_ema", "vocabulary",
                                               "stats")},
        "head_temperature": float(temperature),
    })
    return assets_dir


# ----------------------------------------------------------------------------- measurement


def query_in_language(text: str, lang: str, finnish_detector: Any = None) -> bool:
    """Whether a generated query is written in ``lang``: by script (more than half of its
    letters), and for Finnish (Latin script) also by a language identifier when given."""
    from xqg_tui.languages import script_counts

    counts = script_counts(text)
    total = sum(counts.values())
    if total == 0:
        return False
    if lang == "ja":
        ok = (counts.get("HIRAGANA", 0) + counts.get("KATAKANA", 0) + counts.get("CJK", 0)) / total > 0.5
        return ok and counts.get("HANGUL", 0) == 0
    script = {"ar": "ARABIC", "bn": "BENGALI", "te": "TELUGU", "ko": "HANGUL", "ru": "CYRILLIC",
              "fi": "LATIN"}.get(lang)
    if script is None:
        raise XQGError(f"no script rule for language {lang}")
    ok = counts.get(script, 0) / total > 0.5
    if ok and lang == "fi" and finnish_detector is not None:
        from lingua import Language

        ok = finnish_detector.detect_language_of(text) == Language.FINNISH
    return ok


def _finnish_detector() -> Any:
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        return None
    return LanguageDetectorBuilder.from_all_languages().build()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _cached_encode(searcher: Any, texts: list[str], work_dir: Path) -> np.ndarray:
    """Query vectors, cached in ``work_dir`` by a hash of the texts and the encoder."""
    import hashlib

    from xqg_tui.io.atomic import save_npy_atomic

    key = hashlib.sha256(json.dumps([texts, searcher.index.manifest.get("encoder")], sort_keys=True,
                                    default=str, ensure_ascii=False).encode()).hexdigest()[:16]
    path = Path(work_dir) / f"queries-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    vecs = searcher.encode_queries(texts)
    save_npy_atomic(path, vecs)
    return vecs


def measure_demo(generated: Path, demo_dir: Path, work_dir: Path, langs: Sequence[str] = PAPER_LANGS,
                 alphas: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
                 log: Log = print) -> dict[str, Any]:
    """The model card's numbers for generated queries of the demo passages: language
    share, distinct share, own-passage retrieval, and augmentation vs none on the
    demo EVALUATION queries with alpha/fusion chosen on the TRAINING queries."""
    from scipy.stats import ttest_rel

    from xqg_tui.evaluation import compare_reports, evaluate
    from xqg_tui.index.builder import BuildConfig, build_index
    from xqg_tui.index.fusion import FusionSpec
    from xqg_tui.io.qrels import read_qrels
    from xqg_tui.io.queries import read_queries
    from xqg_tui.search import Searcher

    demo_dir, work_dir = Path(demo_dir), Path(work_dir)
    rows = _read_jsonl(generated)
    result: dict[str, Any] = {"langs": list(langs)}
    fin = _finnish_detector()
    result["finnish_identifier"] = "lingua-language-detector (all languages)" if fin else "script only"
    lang_share, script_share, distinct = {}, {}, {}
    for lang in langs:
        qs = [q for r in rows for q in r["generated_queries"].get(lang, [])]
        lang_share[lang] = sum(query_in_language(q, lang, fin) for q in qs) / max(1, len(qs))
        script_share[lang] = sum(query_in_language(q, lang) for q in qs) / max(1, len(qs))
        per = [len(set(r["generated_queries"][lang])) / len(r["generated_queries"][lang])
               for r in rows if r["generated_queries"].get(lang)]
        distinct[lang] = sum(per) / max(1, len(per))
    result["in_language"] = lang_share
    result["in_script"] = script_share
    result["distinct"] = distinct
    log(f"language {lang_share}\ndistinct {distinct}")

    index_dir = work_dir / "measure-index"
    if index_dir.exists():
        import shutil

        shutil.rmtree(index_dir)
    build_index(BuildConfig(corpus=demo_dir / "corpus.jsonl", out=index_dir, encoder="offline", generator=None,
                            import_generated=Path(generated), langs=list(langs), queries_per_lang=5, seed=0))
    s = Searcher.open(index_dir)
    idx = s.index
    P = np.asarray(idx.passage_vectors, dtype=np.float32)
    own = {}
    for lang in langs:
        V = np.asarray(idx.query_vectors[lang], dtype=np.float32)
        counts = np.asarray(idx.query_counts[lang])
        hits, total = 0, 0
        for d in range(len(P)):
            c = int(counts[d])
            if c == 0:
                continue
            top = np.argmax(V[d, :c] @ P.T, axis=1)
            hits += int((top == d).sum())
            total += c
        own[lang] = hits / max(1, total)
    result["own_passage_top1"] = own
    result["own_passage_top1_chance"] = 1.0 / len(P)
    log(f"own passage top-1 {own}")

    docids = [p.docid for p in idx.passages]
    text = {p.docid: p.text for p in idx.passages}

    def run_for(Q: np.ndarray, queries: list[Any], spec: FusionSpec) -> dict[str, list[tuple[str, float]]]:
        scores, rowids = s.search_vectors(Q, 100, spec)
        return {q.qid: [(docids[int(i)], float(sc)) for sc, i in zip(sr, ir) if i >= 0]
                for q, sr, ir in zip(queries, scores, rowids)}

    train_q = read_queries(demo_dir / "queries.train.jsonl")
    train_qrels = read_qrels(demo_dir / "qrels.train.trec")
    Qt = _cached_encode(s, [q.text for q in train_q], work_dir)
    plain_spec = FusionSpec(alpha=0.0, fusion="mean", langs=tuple(langs), n=5)
    base_train = evaluate(run_for(Qt, train_q, plain_spec), train_q, qrels=train_qrels)
    # the training queries' own passage, for reference (real questions)
    real_top1: dict[str, list[float]] = {}
    run0 = run_for(Qt, train_q, plain_spec)
    for q in train_q:
        rel = train_qrels.get(q.qid, {}) if hasattr(train_qrels, "get") else {}
        top = run0[q.qid][0][0] if run0[q.qid] else None
        real_top1.setdefault(q.lang.strip(), []).append(1.0 if top in rel else 0.0)
    result["train_queries_own_passage_top1"] = {k: sum(v) / len(v) for k, v in sorted(real_top1.items())}
    grid = []
    for fusion in ("mean", "sum"):
        for alpha in alphas:
            a = alpha if fusion == "mean" else alpha / 5.0  # sum of 5 vectors per language
            spec = FusionSpec(alpha=a, fusion=fusion, langs=tuple(langs), n=5)
            rep = evaluate(run_for(Qt, train_q, spec), train_q, qrels=train_qrels)
            grid.append({"fusion": fusion, "alpha": a, "Recall@5": rep.macro["Recall@5"],
                         "MRR@10": rep.macro.get("MRR@10")})
            log(f"train {fusion} alpha {a:.3f}: R@5 {rep.macro['Recall@5']:.4f}")
    best = max(grid, key=lambda g: (round(g["Recall@5"], 6), g["MRR@10"] or 0.0, -g["alpha"]))
    result["tuning_on_training_queries"] = {"plain_Recall@5": base_train.macro["Recall@5"], "grid": grid,
                                            "chosen": {"fusion": best["fusion"], "alpha": best["alpha"]}}
    log(f"chosen on training queries: {best}")

    eval_q = read_queries(demo_dir / "queries.eval.jsonl")
    eval_qrels = read_qrels(demo_dir / "qrels.eval.trec")
    Qe = _cached_encode(s, [q.text for q in eval_q], work_dir)
    spec = FusionSpec(alpha=best["alpha"], fusion=best["fusion"], langs=tuple(langs), n=5)
    plain = evaluate(run_for(Qe, eval_q, plain_spec), eval_q, qrels=eval_qrels, passage_text=text)
    aug = evaluate(run_for(Qe, eval_q, spec), eval_q, qrels=eval_qrels, passage_text=text)
    cmp = compare_reports(plain, aug)
    out: dict[str, Any] = {}
    for metric in ("Recall@5", "R@2kt", "R@5kt", "MRR@10"):
        if metric not in plain.metrics:
            continue
        per = {}
        for lang in plain.languages:
            e = cmp.per_language[lang][metric]
            per[lang] = {"none": e["base"], "augmented": e["other"], "diff": e["diff"], "p_value": e["p_value"]}
        ids = sorted(plain.per_query[metric])
        a_vals = [plain.per_query[metric][i] for i in ids]
        b_vals = [aug.per_query[metric][i] for i in ids]
        p = float(ttest_rel(b_vals, a_vals).pvalue) if any(x != y for x, y in zip(a_vals, b_vals)) else 1.0
        per["macro"] = {"none": plain.macro[metric], "augmented": aug.macro[metric],
                        "diff": aug.macro[metric] - plain.macro[metric], "p_value_all_queries": p}
        out[metric] = per
    result["eval_augmentation"] = out
    log(json.dumps(out, indent=1))
    return result
