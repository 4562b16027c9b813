"""The cross-lingual query generator (xQG): passages -> questions in other languages.

Any sequence-to-sequence checkpoint works (``MT5ForConditionalGeneration``, T5,
``EncoderDecoderModel``); it is prompted as in the paper with
``"Generate a {Language} question for this passage: {title} {text}"``.

Speed: prompts of all passages x languages are tokenized once, sorted by length and
generated in batches of ``batch_size`` prompts; the encoder runs once per prompt and
its states are shared by the ``n`` samples, with the decoder's key/value cache on;
sampling looks at the top-k candidates only (no full-vocabulary multinomial).

Determinism: sampling (top-k / top-p / temperature) is done by :class:`RowSampler`,
which draws each sample's noise from a counter-based hash of
``(seed, chunk_key, docid, lang, sample number, step, token id)`` instead of torch's
global generator. So the queries of a passage do not depend on which other passages
share its batch or chunk, nor on the order of ``langs``: the same passage, seed and
chunk_key give the same queries on every run (on CPU float32; on a GPU, padding can
shift logits enough to flip a rare near-tie). Pass ``chunk_key=""`` to make the
queries independent of how a corpus was split into chunks.

Language constraint: a model folder may hold ``language_tokens.json`` (the demo
generator does; the paper's mT5 does not): per language, the output token ids a query
in that language may use. :class:`LanguageTokenConstraint` then masks every other id
before sampling, so a query asked in Korean cannot drift into Japanese kana.
``QueryGenerator.load(..., language_constraint=None)`` applies it when the folder has
the file; ``False`` turns it off, ``True`` requires it.

Every passage gets exactly ``n`` strings per language, stripped of surrounding
whitespace, in sampling order; duplicates and empty strings are kept (the index
builder decides what to drop), so sample ``i`` always means the same draw.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xqg_tui.errors import ModelError, XQGError
from xqg_tui.languages import language_name, normalize_code
from xqg_tui.models import registry
from xqg_tui.models.device import configure_threads, resolve_device
from xqg_tui.models.encoder import _first_line, quiet_transformers, weights_digest
from xqg_tui.types import Passage

Progress = Callable[[int, int], None]

PROMPT_TEMPLATE = "Generate a {language} question for this passage: {passage}"
SAMPLER_VERSION = "row-gumbel-v1"
# Without top_k, sampling is over the most likely 1000 tokens: the mass beyond them
# is negligible for a trained model and full-vocabulary noise (250k for mT5) per
# step would cost more than the decoder.
NO_TOP_K_CANDIDATES = 1000
LANGUAGE_TOKENS_FILE = "language_tokens.json"


def build_prompt(lang: str, title: str, text: str) -> str:
    """The paper's generation prompt. An empty title leaves no double space."""
    code = normalize_code(lang)
    try:
        name = language_name(code)
    except KeyError:
        raise XQGError(
            f"unknown language code '{lang}'. Use one of ar, bn, fi, ja, ko, ru, te, or register it first"
        ) from None
    title = (title or "").strip()
    passage = f"{title} {text}" if title else f"{text}"
    return PROMPT_TEMPLATE.format(language=name, passage=passage)


def row_seed(seed: int, chunk_key: str, docid: str, lang: str, sample: int) -> int:
    """64-bit seed of one sample; sha256 so that nearby inputs give unrelated seeds."""
    key = f"{seed}\x1f{chunk_key}\x1f{docid}\x1f{lang}\x1f{sample}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_M3 = np.uint64(0xD6E8FEB86659FD93)


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hashed_uniform(seeds: np.ndarray, step: int, token_ids: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) numbers, one per (row seed, step, token id); uint64 arithmetic
    wraps, which is what the mixing wants."""
    step_term = np.uint64((step * int(_GOLDEN)) % (1 << 64))  # Python ints: no scalar overflow warning
    z = seeds[:, None] + step_term + (token_ids.astype(np.uint64) + np.uint64(1)) * _M3
    bits = _splitmix(_splitmix(z)) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) / float(1 << 53)


class RowSampler:
    """A logits processor that samples each row with its own seed (Gumbel-max over the
    top-k/top-p candidates) and returns scores where only the drawn token is finite, so
    greedy decoding picks exactly that token (the global RNG is never used)."""

    def __init__(
        self, seeds: np.ndarray, top_k: int | None, top_p: float | None, temperature: float
    ) -> None:
        self.seeds = np.asarray(seeds, dtype=np.uint64)
        self.top_k = top_k if top_k and top_k > 0 else None
        self.top_p = top_p
        self.temperature = float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = int(input_ids.shape[1])
        k = min(self.top_k or NO_TOP_K_CANDIDATES, scores.shape[-1])
        values, token_ids = torch.topk(scores.float(), k, dim=-1)  # sorted, most likely first
        values = values / self.temperature
        if self.top_p is not None and self.top_p < 1.0:
            probs = torch.softmax(values, dim=-1)
            mass_before = probs.cumsum(dim=-1) - probs
            values = values.masked_fill(mass_before >= self.top_p, float("-inf"))  # keeps the first token
        ids = token_ids.cpu().numpy()
        if ids.shape[0] != self.seeds.shape[0]:  # rows must map 1:1 to (prompt, sample) seeds
            raise RuntimeError(f"RowSampler got {ids.shape[0]} rows for {self.seeds.shape[0]} seeds")
        noise = -np.log(-np.log(hashed_uniform(self.seeds, step, ids)))
        picked = np.argmax(values.cpu().numpy() + noise, axis=1)
        chosen = torch.from_numpy(ids[np.arange(ids.shape[0]), picked]).to(scores.device)
        # in place: a fresh (rows, vocab) tensor per step would be 80 MB for mT5
        return scores.fill_(float("-inf")).scatter_(1, chosen.unsqueeze(1), 0.0)


def read_language_tokens(path: Path) -> dict[str, list[int]]:
    """The per-language allowed output ids of ``language_tokens.json``."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        langs = data["languages"]
        if data.get("format") != 1 or not isinstance(langs, dict):
            raise ValueError("not a format-1 language token file")
        return {normalize_code(k): [int(t) for t in v] for k, v in langs.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a readable language token file ({exc})") from None


class LanguageTokenConstraint:
    """A logits processor that keeps, for each row, only the output ids allowed for the
    row's language (others get -inf); rows of languages without a list are left alone.
    Apply it before the sampler. In place and proportional to the allowed ids (a
    250k-vocabulary mask per row would cost more than the decoder step)."""

    def __init__(self, tokens: dict[str, list[int]], row_langs: Sequence[str]) -> None:
        self.tokens = tokens
        self.row_langs = list(row_langs)
        self._groups: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _prepare(self, vocab: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        groups: dict[str, list[int]] = {}
        for row, lang in enumerate(self.row_langs):
            if lang in self.tokens:
                groups.setdefault(lang, []).append(row)
        out = []
        for lang, rows in groups.items():
            ids = sorted({t for t in self.tokens[lang] if 0 <= t < vocab})
            out.append((torch.tensor(rows, dtype=torch.long, device=device),
                        torch.tensor(ids, dtype=torch.long, device=device)))
        return out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.row_langs):
            raise RuntimeError(f"LanguageTokenConstraint got {scores.shape[0]} rows for {len(self.row_langs)} languages")
        if self._groups is None:
            self._groups = self._prepare(scores.shape[-1], scores.device)
        for rows, ids in self._groups:
            keep = scores[rows[:, None], ids[None, :]]
            scores.index_fill_(0, rows, float("-inf"))
            scores[rows[:, None], ids[None, :]] = keep
        return scores


_COPY_STOP = frozenset(
    "The A An In On At As By For From Of To It Its This That These Those He She His Her They Their "
    "After Before During Since When While Although However But And Or If With Without There Here".split()
)


def copy_candidate_ids(tokenizer: Any, title: str, text: str) -> list[int]:
    """Token ids of the passage's names and numbers (words that start with a capital
    letter or contain a digit, except capitalised function words), as the tokenizer
    splits them in running text."""
    import re

    words = re.findall(r"\w[\w'’-]*", f"{title or ''} {text}")
    lower = {w for w in words if w[:1].islower()}
    keep: list[str] = []
    for w in words:
        if any(c.isdigit() for c in w) or (w[:1].isupper() and w not in _COPY_STOP and w.lower() not in lower):
            if w not in keep:
                keep.append(w)
    if not keep:
        return []
    ids = sorted(set(tokenizer(" ".join(keep), add_special_tokens=False)["input_ids"]))
    out = []
    for t, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
        core = (piece or "").replace("\u2581", "").lstrip("#")
        # no bare spaces, punctuation or short word-internal pieces ("er", "-")
        if any(c.isdigit() for c in core) or len(core) >= 3 or (piece.startswith("\u2581") and len(core) >= 2):
            out.append(t)
    return out


class SourceCopyBias:
    """A logits processor that adds ``bias`` to the scores of each row's passage names
    and numbers (:func:`copy_candidate_ids`), so queries mention what the passage is
    about. Ids blocked by an earlier processor stay blocked (-inf + bias)."""

    def __init__(self, row_ids: Sequence[Sequence[int]], bias: float) -> None:
        self.row_ids = [list(r) for r in row_ids]
        self.bias = float(bias)
        self._index: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.row_ids):
            raise RuntimeError(f"SourceCopyBias got {scores.shape[0]} rows for {len(self.row_ids)}")
        if self._index is None:
            vocab = scores.shape[-1]
            rows = [r for r, ids in enumerate(self.row_ids) for t in ids if 0 <= t < vocab]
            cols = [t for ids in self.row_ids for t in ids if 0 <= t < vocab]
            self._index = (torch.tensor(rows, dtype=torch.long, device=scores.device),
                           torch.tensor(cols, dtype=torch.long, device=scores.device))
        rows, cols = self._index
        if len(rows):
            scores[rows, cols] += self.bias
        return scores


class QueryGenerator:
    """A loaded query generator. Build with :meth:`QueryGenerator.load`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        model_id: str,
        source: str,
        folder: Path | None = None,
        top_k: int | None = 10,
        top_p: float | None = None,
        temperature: float = 1.0,
        max_new_tokens: int = 64,
        batch_size: int = 16,
        max_input_length: int = 512,
        language_tokens: dict[str, list[int]] | None = None,
        copy_bias: float = 0.0,
    ) -> None:
        if temperature <= 0:
            raise ModelError(f"temperature must be > 0 (got {temperature}); use a small value like 0.1 instead of 0")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ModelError(f"top_p must be in (0, 1] (got {top_p})")
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.source = source
        self.folder = Path(folder) if folder is not None else None
        self.top_k = top_k
        self.top_p = top_p
        self.temperature = float(temperature)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self.max_input_length = int(max_input_length)
        self.device = next(model.parameters()).device
        self.calls = 0  # generate() batches run; tests use it to prove nothing was generated
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._fingerprint: dict[str, Any] | None = None
        # per-language allowed output ids (decoding constraint); None = unconstrained
        self.language_tokens = language_tokens
        # added to the passage's names/numbers (SourceCopyBias); 0 = off
        self.copy_bias = float(copy_bias or 0.0)

    @classmethod
    def load(
        cls,
        spec: str,
        device: str = "auto",
        top_k: int | None = 10,
        top_p: float | None = None,
        temperature: float = 1.0,
        max_new_tokens: int = 64,
        batch_size: int = 16,
        max_input_length: int = 512,
        dtype: str | None = None,
        threads: int | None = None,
        language_constraint: bool | None = None,
        copy_bias: float | None = None,
    ) -> "QueryGenerator":
        """Load ``spec`` (``demo``, ``paper``, a folder or a cached hub id).

        ``language_constraint``: None = apply the folder's ``language_tokens.json`` when
        it has one; False = never; True = required (error when the folder has none).
        ``copy_bias``: None = the model folder's recommendation (``decoding.copy_bias``
        in ``language_tokens.json``, else 0 = off); a number overrides it.

        ``dtype`` None = float32 on CPU, bfloat16 on a GPU that has it (mT5 overflows
        in float16), else float32. ``none`` is not loadable: check
        ``registry.resolve_generator(spec) is None`` first."""
        source = registry.resolve_generator(spec)
        if source is None:
            raise ModelError("no generator to load ('none'). Give --generator demo, paper or a folder")
        folder = registry.local_model_dir(source, "generator")
        torch_device = resolve_device(device)
        torch_dtype = _generator_dtype(dtype, torch_device)
        configure_threads(threads)
        model, tokenizer = _load_seq2seq(folder, str(spec), torch_dtype)
        model.to(torch_device)
        model.eval()
        # A head that blocks most of the vocabulary (the demo generator) only needs
        # its allowed rows computed: same samples, several times faster.
        from .demo_generator import restrict_output_layer

        restrict_output_layer(model)
        language_tokens = None
        lang_file = folder / LANGUAGE_TOKENS_FILE
        if language_constraint or (language_constraint is None and lang_file.is_file()):
            if not lang_file.is_file():
                raise ModelError(f"generator '{spec}' has no {LANGUAGE_TOKENS_FILE}, so it cannot be language-constrained")
            language_tokens = read_language_tokens(lang_file)
        if copy_bias is None:
            copy_bias = _recommended_copy_bias(lang_file) if lang_file.is_file() else 0.0
        return cls(
            model,
            tokenizer,
            model_id=str(spec),
            source=source,
            folder=folder,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            max_input_length=max_input_length,
            language_tokens=language_tokens,
            copy_bias=copy_bias,
        )

    def generate(
        self,
        passages: Sequence[Passage],
        langs: Sequence[str],
        n: int = 5,
        seed: int = 0,
        chunk_key: str = "",
        progress: Progress | None = None,
    ) -> list[dict[str, list[str]]]:
        """``n`` sampled queries per passage and language: ``[{lang: [q1..qn]}, ...]``
        in the order of ``passages``; see the module doc for determinism."""
        codes: list[str] = []
        for lang in langs:
            code = normalize_code(lang)
            if code not in codes:
                codes.append(code)
        results: list[dict[str, list[str]]] = [{code: [] for code in codes} for _ in passages]
        if n <= 0 or not passages or not codes:
            return results
        jobs = [(pi, code) for pi in range(len(passages)) for code in codes]
        prompts = [build_prompt(code, passages[pi].title, passages[pi].text) for pi, code in jobs]
        ids = self.tokenizer(
            prompts, truncation=True, max_length=self.max_input_length, padding=False, return_attention_mask=False
        )["input_ids"]
        order = sorted(range(len(jobs)), key=lambda j: -len(ids[j]))
        copy_ids: dict[int, list[int]] = {}
        if self.copy_bias:
            copy_ids = {pi: copy_candidate_ids(self.tokenizer, p.title, p.text) for pi, p in enumerate(passages)}
        done = 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(1, max(len(ids[j]) for j in batch))
                input_ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, j in enumerate(batch):
                    input_ids[row, : len(ids[j])] = ids[j]
                    mask[row, : len(ids[j])] = 1
                # generate() repeats each prompt n times, consecutively (repeat_interleave)
                seeds = np.array(
                    [
                        row_seed(seed, chunk_key, passages[jobs[j][0]].docid, jobs[j][1], i)
                        for j in batch
                        for i in range(n)
                    ],
                    dtype=np.uint64,
                )
                sampler = RowSampler(seeds, self.top_k, self.top_p, self.temperature)
                constraint = None
                if self.language_tokens:
                    constraint = LanguageTokenConstraint(
                        self.language_tokens, [jobs[j][1] for j in batch for _ in range(n)])
                copy = None
                if self.copy_bias:
                    cands = [copy_ids[jobs[j][0]] for j in batch for _ in range(n)]
                    copy = SourceCopyBias(cands, self.copy_bias)
                output = self._generate_batch(input_ids, mask, n, sampler, constraint, copy)
                self.calls += 1
                texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
                for row, text in enumerate(texts):
                    pi, code = jobs[batch[row // n]]
                    results[pi][code].append(text.strip())
                done += len(batch)
                if progress is not None:
                    progress(done, len(jobs))
        return results

    def _generate_batch(
        self, input_ids: np.ndarray, mask: np.ndarray, n: int, sampler: RowSampler,
        constraint: LanguageTokenConstraint | None = None,
        copy: SourceCopyBias | None = None,
    ) -> torch.Tensor:
        from transformers import LogitsProcessorList
        from transformers.modeling_outputs import BaseModelOutput

        ids = torch.from_numpy(input_ids).to(self.device)
        attention = torch.from_numpy(mask).to(self.device)
        # The encoder runs once per prompt; its states are shared by the n samples.
        encoded = self.model.get_encoder()(input_ids=ids, attention_mask=attention, return_dict=True)
        states = encoded.last_hidden_state.repeat_interleave(n, dim=0)
        # Greedy decoding over RowSampler's one-hot scores = its draw. (HF's own sampling
        # would run torch.multinomial over the whole vocabulary at every step, which
        # costs more than the decoder itself on a CPU.)
        return self.model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            attention_mask=attention.repeat_interleave(n, dim=0),
            do_sample=False,
            num_beams=1,
            num_return_sequences=1,
            max_new_tokens=self.max_new_tokens,
            use_cache=True,
            logits_processor=LogitsProcessorList([x for x in (constraint, copy, sampler) if x is not None]),
        )

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the generated queries, for index manifests."""
        if self._fingerprint is None:
            digest = weights_digest(self.folder) if self.folder is not None else {}
            self._fingerprint = {
                "model_id": self.model_id,
                "source": self.source,
                "revision": registry.snapshot_revision(self.folder) if self.folder is not None else None,
                "architecture": getattr(self.model.config, "model_type", type(self.model).__name__),
                **digest,
                "prompt": PROMPT_TEMPLATE,
                "sampler": SAMPLER_VERSION,
                "top_k": self.top_k,
                "top_p": self.top_p,
                "temperature": self.temperature,
                "max_new_tokens": self.max_new_tokens,
                "max_input_length": self.max_input_length,
            }
            if self.language_tokens:  # only then, so unconstrained fingerprints stay as they were
                blob = repr(sorted((k, v) for k, v in self.language_tokens.items())).encode()
                self._fingerprint["language_constraint"] = hashlib.sha256(blob).hexdigest()[:16]
            if self.copy_bias:
                self._fingerprint["copy_bias"] = self.copy_bias
        return dict(self._fingerprint)

    def __repr__(self) -> str:
        return f"QueryGenerator({self.model_id!r}, top_k={self.top_k}, device={self.device})"


def _recommended_copy_bias(path: Path) -> float:
    import json

    try:
        value = (json.loads(Path(path).read_text(encoding="utf-8")).get("decoding") or {}).get("copy_bias", 0.0)
        return float(value or 0.0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def _generator_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    from xqg_tui.models.device import resolve_dtype

    if dtype is None and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if dtype is None:
        return torch.float32
    return resolve_dtype(dtype, device)


def _load_seq2seq(folder: Path, spec: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (ValueError, KeyError) as exc:
        raise ModelError(
            f"generator '{spec}' has an architecture transformers does not know ({_first_line(exc)}); "
            "models needing remote code are refused. Use --generator demo or an mT5 folder"
        ) from None
    except OSError as exc:
        raise ModelError(f"generator '{spec}': config.json cannot be read ({_first_line(exc)})") from None
    if not getattr(config, "is_encoder_decoder", False):
        raise ModelError(
            f"generator '{spec}' is a {config.model_type} model, not a sequence-to-sequence query generator "
            "(mT5, T5 or EncoderDecoder). Use --generator demo, paper or a seq2seq folder"
        )
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model, info = AutoModelForSeq2SeqLM.from_pretrained(
                str(folder), use_safetensors=True, dtype=dtype, output_loading_info=True
            )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"generator '{spec}' cannot be loaded: {_first_line(exc)}") from None
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if missing:
        raise ModelError(
            f"generator '{spec}': {len(missing)} weights are missing from the checkpoint (e.g. {missing[0]}), "
            "so it would generate from random weights. Check the folder or save it again"
        )
    gen_config = getattr(model, "generation_config", None)
    start = getattr(gen_config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(gen_config, "bos_token_id", None)
    if start is None:
        raise ModelError(
            f"generator '{spec}' has no decoder_start_token_id in its config, so it cannot generate. "
            "Set it in config.json (mT5 uses the pad id, 0)"
        )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else getattr(config, "pad_token_id", None)
    if pad is None:
        raise ModelError(f"generator '{spec}' has no pad token. Set pad_token in its tokenizer config")
    eos = getattr(gen_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else getattr(config, "eos_token_id", None)
    # A clean generation config: only the special ids come from the checkpoint, so a
    # checkpoint's own sampling/beam settings cannot change (or warn about) our decoding.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=eos, pad_token_id=pad, bos_token_id=getattr(gen_config, "bos_token_id", None)
    )
    return model, tokenizer
