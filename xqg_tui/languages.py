"""Languages are data: a code -> name registry, code normalisation and detection.

The seven languages of XOR-TyDi are the default set, but any code with a
name can be registered (``register_language("de", "German")``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

PAPER_LANGUAGES: tuple[str, ...] = ("ar", "bn", "fi", "ja", "ko", "ru", "te")

_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "fi": "Finnish",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "te": "Telugu",
    "en": "English",
    "de": "German",
    "el": "Greek",
    "es": "Spanish",
    "hi": "Hindi",
    "ro": "Romanian",
    "th": "Thai",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def register_language(code: str, name: str) -> None:
    """Make a new language code known (used in prompts as ``name``)."""
    _NAMES[normalize_code(code)] = name.strip()


def normalize_code(code: str) -> str:
    """Normalise a language code: strip spaces (XOR-TyDi writes ``" ar"``), lower-case,
    drop a region (``ja-JP`` -> ``ja``)."""
    c = str(code).strip().lower().replace("_", "-")
    if "-" in c:
        c = c.split("-", 1)[0]
    return c


def is_known(code: str) -> bool:
    return normalize_code(code) in _NAMES


def language_name(code: str) -> str:
    """English name of a language code, e.g. ``"ja" -> "Japanese"``.

    Raises KeyError for an unknown code (callers turn that into an InputError)."""
    return _NAMES[normalize_code(code)]


def known_languages() -> dict[str, str]:
    return dict(_NAMES)


def parse_lang_list(text: str | None, default: tuple[str, ...] = PAPER_LANGUAGES) -> list[str]:
    """Parse ``"ar,bn, ja"`` into normalised codes; ``None``/``"all"`` gives the default set;
    ``"none"`` or ``""`` gives an empty list."""
    if text is None or text.strip().lower() == "all":
        return list(default)
    if text.strip().lower() in ("", "none"):
        return []
    out: list[str] = []
    for part in text.split(","):
        if part.strip():
            code = normalize_code(part)
            if code not in out:
                out.append(code)
    return out


# Scripts that identify a language on their own.
_SCRIPT_LANG = {
    "ARABIC": "ar",
    "BENGALI": "bn",
    "TELUGU": "te",
    "HANGUL": "ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CYRILLIC": "ru",
    "THAI": "th",
    "GREEK": "el",
    "DEVANAGARI": "hi",
}


@dataclass(frozen=True)
class Detection:
    code: str
    confidence: float


def script_counts(text: str) -> dict[str, int]:
    """Count letters by script name (first word of the Unicode character name)."""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        try:
            name = unicodedata.name(ch)
        except ValueError:
            continue
        script = name.split(" ", 1)[0]
        if script == "CJK":
            script = "CJK"
        counts[script] = counts.get(script, 0) + 1
    return counts


def detect_language(text: str, candidates: tuple[str, ...] | list[str] | None = None) -> Detection:
    """Detect the language of a short query.

    Script decides for ar, bn, te, ko, ja (kana, or Han without Hangul), ru;
    Latin-script text goes to py3langid restricted to the candidates
    (Finnish vs English etc.). Returns code ``"und"`` when nothing is known.
    """
    counts = script_counts(text)
    total = sum(counts.values())
    if total == 0:
        return Detection("und", 0.0)
    cands = [normalize_code(c) for c in (candidates or list(_NAMES))]
    if counts.get("HIRAGANA", 0) + counts.get("KATAKANA", 0) > 0 and "ja" in cands:
        return Detection("ja", 0.99)
    if counts.get("CJK", 0) > 0 and counts.get("HANGUL", 0) == 0:
        code = "ja" if "ja" in cands or "zh" not in cands else "zh"
        return Detection(code, counts["CJK"] / total)
    best_script, best = max(counts.items(), key=lambda kv: kv[1])
    code = _SCRIPT_LANG.get(best_script)
    if code is not None and code in cands:
        return Detection(code, best / total)
    if best_script == "LATIN":
        latin = [c for c in cands if c not in _SCRIPT_LANG.values() and c not in ("ja", "zh")]
        if not latin:
            return Detection("und", 0.0)
        if len(latin) == 1:
            return Detection(latin[0], best / total)
        return _guess_latin(text, latin)
    return Detection(code or "und", best / total if code else 0.0)


# Small function-word lists: enough to tell the Latin-script languages of the
# registry apart on a short question without loading a (pickled) langid model.
_LATIN_CUES: dict[str, tuple[str, ...]] = {
    "fi": ("mikä", "mitä", "missä", "milloin", "kuka", "kuinka", "miksi", "mihin", "mistä", "onko",
           "ja", "on", "oli", "vuonna", "kenen", "minkä", "paljonko", "monta", "ä", "ö", "kk", "tt"),
    "en": ("what", "who", "when", "where", "which", "how", "why", "the", "is", "was", "of", "did"),
    "de": ("was", "wer", "wann", "wo", "welche", "wie", "der", "die", "das", "ist", "ß", "ü"),
    "es": ("qué", "quién", "cuándo", "dónde", "cuál", "cómo", "el", "la", "los", "es", "ñ", "¿"),
    "tr": ("ne", "kim", "nerede", "hangi", "nasıl", "mı", "mi", "ı", "ş", "ğ"),
    "vi": ("gì", "ai", "nào", "đâu", "của", "là", "đ", "ư", "ơ"),
    "ro": ("ce", "cine", "când", "unde", "care", "cum", "este", "ă", "ț", "ș"),
}


def _guess_latin(text: str, candidates: list[str]) -> Detection:
    lowered = text.lower()
    words = set(re.findall(r"\w+", lowered))
    scores: dict[str, float] = {}
    for code in candidates:
        cues = _LATIN_CUES.get(code, ())
        score = 0.0
        for cue in cues:
            if len(cue) <= 2 and not cue.isascii():
                score += 0.5 * lowered.count(cue)
            elif cue in words:
                score += 1.0
            elif len(cue) == 2 and cue.isascii() and cue in lowered and code == "fi":
                score += 0.2  # Finnish double consonants/vowels
        scores[code] = score
    best = max(candidates, key=lambda c: (scores.get(c, 0.0), -candidates.index(c)))
    total = sum(scores.values()) or 1.0
    return Detection(best, scores.get(best, 0.0) / total if scores.get(best) else 0.0)
