"""The dense encoder (xDR): texts -> float32 vectors.

Conventions (pooling, prefixes, normalisation) belong to the model, so they are
read from the model folder, in this order of precedence:

1. explicit arguments of :meth:`Encoder.load` (``None`` = not given);
2. the ``"xqg"`` section of ``config.json`` (written by ``models/offline.py``);
3. sentence-transformers files: ``1_Pooling/config.json`` (pooling mode),
   ``modules.json`` (a ``Normalize`` module), ``config_sentence_transformers.json``
   (``prompts.query`` / ``prompts.passage``);
4. known families: ``intfloat/*e5*`` = mean pooling, normalised, ``"query: "`` /
   ``"passage: "`` prefixes;
5. defaults: CLS pooling, no prefix, no normalisation -- the paper's mBERT
   (``ielabgroup/bert-base-multilingual-cased-xor-tydi``, trained with Tevatron) uses CLS
   and raw inner products.

Passages are encoded as ``passage_template.format(title=..., text=...)``; the default
``"{title} {text}"`` is what Tevatron does for the paper's encoder (title, a space,
the text; just the text when the title is empty). ``"pair"`` encodes
``tokenizer(title, text)`` as a sentence pair instead.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from xqg_tui.errors import ModelError
from xqg_tui.models import registry
from xqg_tui.models.device import configure_threads, resolve_device, resolve_dtype
from xqg_tui.types import Passage

Progress = Callable[[int, int], None]
PassageLike = Passage | tuple[str, str] | str

POOLINGS = ("cls", "mean")
DEFAULT_PASSAGE_TEMPLATE = "{title} {text}"
_E5_FAMILY = re.compile(r"intfloat/.*e5", re.IGNORECASE)
# Weights allowed to be absent from a checkpoint: buffers and the unused BERT pooler.
_MISSING_OK = re.compile(r"(position_ids|pooler\.)")
_HASH_BYTES = 4 * 1024 * 1024


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load-time chatter (unused-head warnings, load reports, tqdm
    bars): the CLI and the TUI own the terminal."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()


def weights_digest(folder: Path) -> dict[str, Any]:
    """sha256 over the first 4 MiB of each safetensors file plus the sizes: reads a few
    MB, not the whole model, yet changes with any retrained or re-quantised checkpoint
    (the header and the first tensors are in those bytes)."""
    digest = hashlib.sha256()
    total = 0
    for path in registry.safetensors_files(folder):
        size = path.stat().st_size
        total += size
        digest.update(f"{path.name}:{size}\n".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(_HASH_BYTES))
    return {"weights_sha256": digest.hexdigest(), "weights_bytes": total}


def read_conventions(folder: Path) -> dict[str, Any]:
    """Pooling/normalize/prefix conventions a model folder declares (keys absent when
    the folder says nothing). The ``xqg`` section wins over sentence-transformers files."""
    folder = Path(folder)
    found: dict[str, Any] = {}
    st = _read_sentence_transformers(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    xqg = config.get("xqg") if isinstance(config, dict) else None
    found.update(st)
    if isinstance(xqg, dict):
        for key in ("pooling", "normalize", "query_prefix", "passage_prefix", "passage_template"):
            if xqg.get(key) is not None:
                found[key] = xqg[key]
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_sentence_transformers(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    modules = _read_json(folder / "modules.json")
    pooling_dir = "1_Pooling"
    if isinstance(modules, list):
        types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
        found["normalize"] = any(t.endswith(".Normalize") for t in types)
        for module in modules:
            if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
                pooling_dir = str(module.get("path") or pooling_dir)
    pooling = _read_json(_safe_child(folder, pooling_dir) / "config.json")
    if isinstance(pooling, dict):
        if pooling.get("pooling_mode_cls_token"):
            found["pooling"] = "cls"
        elif pooling.get("pooling_mode_mean_tokens"):
            found["pooling"] = "mean"
        elif pooling.get("pooling_mode"):
            found["pooling"] = str(pooling["pooling_mode"]).replace("_tokens", "").replace("_token", "")
        else:
            modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
            if modes:
                found["pooling"] = modes[0].removeprefix("pooling_mode_")
    st_config = _read_json(folder / "config_sentence_transformers.json")
    if isinstance(st_config, dict) and isinstance(st_config.get("prompts"), dict):
        prompts = st_config["prompts"]
        if isinstance(prompts.get("query"), str):
            found["query_prefix"] = prompts["query"]
        for name in ("passage", "document", "corpus"):
            if isinstance(prompts.get(name), str):
                found["passage_prefix"] = prompts[name]
                break
    return found


def _safe_child(folder: Path, rel: str) -> Path:
    """``folder/rel`` but never outside ``folder`` (modules.json is untrusted input)."""
    child = (folder / rel).resolve()
    if folder.resolve() not in (child, *child.parents):
        return folder / "1_Pooling"
    return child


def _has_pooler_weights(folder: Path) -> bool:
    from safetensors import safe_open

    for path in registry.safetensors_files(folder):
        with safe_open(str(path), framework="pt") as handle:
            if any("pooler." in key for key in handle.keys()):
                return True
    return False


def _format_passage(item: PassageLike, template: str) -> str | tuple[str, str]:
    if isinstance(item, Passage):
        title, text = item.title, item.text
    elif isinstance(item, tuple):
        title, text = item
    else:
        return str(item)
    title = (title or "").strip()
    text = text or ""
    if template == "pair":
        return (title, text)
    if not title:
        return text
    return template.format(title=title, text=text)


class Encoder:
    """A loaded dense encoder. Build with :meth:`Encoder.load`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        model_id: str,
        source: str,
        folder: Path | None = None,
        pooling: str = "cls",
        normalize: bool = False,
        query_prefix: str = "",
        passage_prefix: str = "",
        passage_template: str = DEFAULT_PASSAGE_TEMPLATE,
        max_query_length: int = 32,
        max_passage_length: int = 128,
        batch_size: int = 32,
    ) -> None:
        if pooling not in POOLINGS:
            raise ModelError(f"unknown pooling '{pooling}' for encoder '{model_id}'. Use cls or mean")
        if passage_template != "pair" and "{text}" not in passage_template:
            raise ModelError(f"passage template '{passage_template}' has no {{text}}. Use e.g. '{{title}} {{text}}'")
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.source = source
        self.folder = Path(folder) if folder is not None else None
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.passage_template = passage_template
        self.max_query_length = int(max_query_length)
        self.max_passage_length = int(max_passage_length)
        self.batch_size = max(1, int(batch_size))
        self.device = next(model.parameters()).device
        config = getattr(model, "config", None)
        self.dim = int(getattr(config, "hidden_size", None) or getattr(config, "d_model"))
        self.calls = 0  # forward passes run; tests use it to prove nothing was encoded
        self._accepts_token_types = "token_type_ids" in inspect.signature(model.forward).parameters
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._token_limit = _token_limit(tokenizer, config)
        self._fingerprint: dict[str, Any] | None = None

    # ------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        spec: str,
        device: str = "auto",
        dtype: str | None = None,
        max_query_length: int = 32,
        max_passage_length: int = 128,
        pooling: str | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        normalize: bool | None = None,
        batch_size: int = 32,
        passage_template: str | None = None,
        threads: int | None = None,
    ) -> "Encoder":
        """Load ``spec`` (``offline``, ``paper``, a folder or a cached hub id).

        Raises ModelError with a one-line next step for anything a user can get wrong."""
        source = registry.resolve_encoder(spec)
        folder = registry.local_model_dir(source, "encoder")
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        configure_threads(threads)

        conv = read_conventions(folder)
        family: dict[str, Any] = {}
        if _E5_FAMILY.search(str(spec)) or _E5_FAMILY.search(source):
            family = {"pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: "}

        def pick(name: str, explicit: Any, default: Any) -> Any:
            if explicit is not None:
                return explicit
            if name in conv:
                return conv[name]
            return family.get(name, default)

        model, tokenizer = _load_model_and_tokenizer(folder, spec, torch_dtype)
        model.to(torch_device)
        model.eval()
        return cls(
            model,
            tokenizer,
            model_id=str(spec),
            source=source,
            folder=folder,
            pooling=str(pick("pooling", pooling, "cls")).lower(),
            normalize=bool(pick("normalize", normalize, False)),
            query_prefix=str(pick("query_prefix", query_prefix, "")),
            passage_prefix=str(pick("passage_prefix", passage_prefix, "")),
            passage_template=str(pick("passage_template", passage_template, DEFAULT_PASSAGE_TEMPLATE)),
            max_query_length=max_query_length,
            max_passage_length=max_passage_length,
            batch_size=batch_size,
        )

    # ------------------------------------------------------------ encoding

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        """(n, dim) float32 vectors of queries (``query_prefix`` + text)."""
        inputs = [f"{self.query_prefix}{t or ''}" for t in texts]
        return self._encode(inputs, self.max_query_length, batch_size, progress)

    def encode_passages(
        self, passages: Sequence[PassageLike], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        """(n, dim) float32 vectors of passages: :class:`Passage` objects,
        ``(title, text)`` tuples or already-formatted strings."""
        formatted = [_format_passage(p, self.passage_template) for p in passages]
        inputs: list[str | tuple[str, str]] = []
        for item in formatted:
            if isinstance(item, tuple):  # "pair" template: the prefix goes on the title side
                inputs.append((f"{self.passage_prefix}{item[0]}", item[1]))
            else:
                inputs.append(f"{self.passage_prefix}{item}")
        return self._encode(inputs, self.max_passage_length, batch_size, progress)

    def _tokenize(self, inputs: list[str | tuple[str, str]], max_length: int) -> dict[str, list[list[int]]]:
        if self._token_limit is not None:
            max_length = min(max_length, self._token_limit)
        kwargs = dict(truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
        if inputs and isinstance(inputs[0], tuple):
            firsts = [a for a, _ in inputs]  # type: ignore[misc]
            seconds = [b for _, b in inputs]  # type: ignore[misc]
            encoded = self.tokenizer(firsts, seconds, **kwargs)
        else:
            encoded = self.tokenizer(list(inputs), **kwargs)
        return {k: list(v) for k, v in encoded.items()}

    def _encode(
        self,
        inputs: list[str | tuple[str, str]],
        max_length: int,
        batch_size: int | None,
        progress: Progress | None,
    ) -> np.ndarray:
        n = len(inputs)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        encoded = self._tokenize(inputs, max_length)
        ids = encoded["input_ids"]
        types = encoded.get("token_type_ids") if self._accepts_token_types else None
        # Longest first: similar lengths share a batch (little padding) and the
        # biggest batch comes first, so an out-of-memory shows up at once.
        order = sorted(range(n), key=lambda i: -len(ids[i]))
        size = max(1, int(batch_size or self.batch_size))
        done = 0
        with torch.inference_mode():
            for start in range(0, n, size):
                rows = order[start : start + size]
                width = max(1, max(len(ids[i]) for i in rows))
                input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                token_types = np.zeros((len(rows), width), dtype=np.int64) if types is not None else None
                for j, i in enumerate(rows):
                    length = len(ids[i])
                    input_ids[j, :length] = ids[i]
                    mask[j, :length] = 1
                    if token_types is not None:
                        token_types[j, :length] = types[i]
                batch = {
                    "input_ids": torch.from_numpy(input_ids).to(self.device),
                    "attention_mask": torch.from_numpy(mask).to(self.device),
                }
                if token_types is not None:
                    batch["token_type_ids"] = torch.from_numpy(token_types).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                self.calls += 1
                pooled = pool(hidden, batch["attention_mask"], self.pooling)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=-1)
                out[rows] = pooled.cpu().numpy()
                done += len(rows)
                if progress is not None:
                    progress(done, n)
        return out

    # ------------------------------------------------------------ identity

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the vectors this encoder makes, for index manifests.

        Compare with :func:`fingerprint_mismatches` (``model_id``/``source`` may differ
        between machines for the same model, the weights digest may not)."""
        if self._fingerprint is None:
            digest = weights_digest(self.folder) if self.folder is not None else {}
            self._fingerprint = {
                "model_id": self.model_id,
                "source": self.source,
                "revision": registry.snapshot_revision(self.folder) if self.folder is not None else None,
                "architecture": getattr(self.model.config, "model_type", type(self.model).__name__),
                **digest,
                "dim": self.dim,
                "pooling": self.pooling,
                "normalize": self.normalize,
                "query_prefix": self.query_prefix,
                "passage_prefix": self.passage_prefix,
                "passage_template": self.passage_template,
                "max_query_length": self.max_query_length,
                "max_passage_length": self.max_passage_length,
            }
        return dict(self._fingerprint)

    def __repr__(self) -> str:
        return (
            f"Encoder({self.model_id!r}, dim={self.dim}, pooling={self.pooling}, "
            f"normalize={self.normalize}, device={self.device})"
        )


# Keys whose difference means vectors are not comparable (queries of one encoder
# against passages of another). max_passage_length only changes truncation of long
# passages, so it is reported separately by callers if they care.
IDENTITY_KEYS = (
    "weights_sha256",
    "weights_bytes",
    "dim",
    "pooling",
    "normalize",
    "query_prefix",
    "passage_prefix",
)


def fingerprint_mismatches(built: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences that make an index's vectors incompatible with
    ``current``; empty when they match. Keys missing on either side are ignored."""
    problems = []
    for key in IDENTITY_KEYS:
        if key in built and key in current and built[key] != current[key]:
            problems.append(f"{key}: index has {built[key]!r}, encoder has {current[key]!r}")
    return problems


def _token_limit(tokenizer: Any, config: Any) -> int | None:
    """Most tokens the model can take (position embeddings; RoBERTa-style models
    offset positions by 2), so a large max length never crashes the model."""
    limits = []
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 100_000:
        limits.append(declared)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
        limits.append(positions - offset)
    return min(limits) if limits else None


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """CLS = the first token's vector; mean = average over real (unmasked) tokens.
    Computed in float32 so fp16 models pool without overflow."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    raise ModelError(f"unknown pooling '{pooling}'. Use cls or mean")


def _load_model_and_tokenizer(folder: Path, spec: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (ValueError, KeyError) as exc:  # unknown model_type: would need remote code
        raise ModelError(
            f"encoder '{spec}' has an architecture transformers does not know "
            f"({_first_line(exc)}); models needing remote code are refused. Use --encoder offline or a BERT-like folder"
        ) from None
    except OSError as exc:
        raise ModelError(f"encoder '{spec}': config.json cannot be read ({_first_line(exc)})") from None

    kwargs: dict[str, Any] = {"use_safetensors": True, "dtype": dtype}
    try:
        model_cls = MODEL_MAPPING[type(config)]
    except KeyError:
        raise ModelError(
            f"encoder '{spec}' is a {config.model_type} model, which has no plain encoder class. "
            "Use --encoder offline or a BERT-like folder"
        ) from None
    if "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters and not _has_pooler_weights(folder):
        kwargs["add_pooling_layer"] = False  # no pooler in the checkpoint: don't init one at random
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"encoder '{spec}' cannot be loaded: {_first_line(exc)}") from None
    missing = [k for k in info.get("missing_keys", []) if not _MISSING_OK.search(k)]
    if missing:
        raise ModelError(
            f"encoder '{spec}': {len(missing)} weights are missing from the checkpoint (e.g. {missing[0]}), "
            "so it would encode with random weights. Check the folder or convert it again"
        )
    if getattr(config, "is_encoder_decoder", False):
        model = model.get_encoder()  # a T5-style checkpoint: only its encoder embeds texts
    logging.getLogger(__name__).debug("loaded encoder %s from %s", spec, folder)
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__
