"""Undo the cheap obfuscations attackers put around injection and abuse text, before any model sees it.

:func:`views` turns one text into the few *views* the detectors score (the highest-scoring view wins):

* the **plain** view: NFKC (folds full-width and mathematical letters), format characters removed (zero-width
  spaces and joiners, bidi marks, soft hyphens), look-alike letters folded to ASCII (Cyrillic/Greek homoglyphs and
  accented Latin, ``data/confusables.tsv``), lower-cased; letters split by separators joined again
  (``i.g.n.o.r.e``, ``i g n o r e``, ``i-g-n-o-r-e``); leetspeak folded inside words that mix letters and digits
  (``1gn0r3`` → ``ignore``); ``\\xNN``/``\\uNNNN`` escapes and URL-encoding decoded in place;
* **decoded payloads**: base64 and hex runs that decode to readable text;
* **rot13** and **reversed** views, only when they read more like English than the plain view does.

Each view carries the name of the transformation that produced it (``"plain"``, ``"base64"``, ``"hex"``,
``"rot13"``, ``"reversed"``) and whether any de-obfuscation fired, so a finding can say *how* a text was hidden.
Pure functions; the look-alike table is package data.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from detectors.resources import read_words

__all__ = ["View", "views", "fold", "MAX_CHARS"]

#: longest text (characters) the views are built from; the rest is cut (head and tail are kept)
MAX_CHARS = 4000


@dataclass(frozen=True, slots=True)
class View:
    """One normalised reading of a text."""

    text: str
    source: str
    """``plain``, ``base64``, ``hex``, ``rot13`` or ``reversed``."""
    obfuscated: bool
    """True when a de-obfuscation step changed the text (homoglyphs, separators, leetspeak, escapes, decoding)."""


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str]:
    """``str.translate`` table: look-alike characters to ASCII (``data/confusables.tsv``)."""
    table: dict[int, str] = {}
    for line in read_words(__package__, "data/confusables.tsv"):
        code, ascii_ = line.split("\t")
        table[int(code, 16)] = ascii_
    return table


#: invisible format characters (zero-width space/joiners, bidi controls, soft hyphen, word joiner, BOM, tag
#: characters) and combining marks left after NFKC (stacked "zalgo" accents)
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f"
                        "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff]")
_SEPARATED = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-_*|/\\+~,:]{1,3}){3,}[a-z](?![a-z0-9])")
_SEP_CHARS = re.compile(r"[ .\-_*|/\\+~,:]")
_LEET_ANY = re.compile(r"[a-z][0-9@$!|]|[@$0-9][a-z]")
_DIGIT = re.compile(r"[0-9]")
#: a letter, a separator run, a letter: the cheap test before looking for separated words
_SEP_PAIR = re.compile(r"(?<![a-z0-9])[a-z][ .\-_*|/\\+~,:]{1,3}[a-z][ .\-_*|/\\+~,:]{1,3}[a-z](?![a-z0-9])")
#: a leet character with a letter on each side (``h4ck``), or a leading ``@``/``$`` before letters (``@ss``)
_LEET_INNER = re.compile(r"[a-z][0-9@$!|]+[a-z]|^[@$0-9][a-z]{2}|^[0-9][a-z]+[0-9]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a",
                       "$": "s", "!": "i", "|": "l"})
_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}")
_URLENC = re.compile(r"(?:%[0-9a-fA-F]{2}[^%\s]{0,3}){3,}")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{20,}(?![0-9A-Fa-f])")
_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    """Frequent English words (``data/common_words.txt``): a view "reads like English" by its share of these."""
    return frozenset(read_words(__package__, "data/common_words.txt"))


def fold(text: str) -> tuple[str, bool]:
    """The plain view of ``text`` and whether de-obfuscation changed anything beyond case and NFKC."""
    changed = False
    t = text
    if not t.isascii():
        t = unicodedata.normalize("NFKC", t)
        t2 = _INVISIBLE.sub("", t)
        table = _fold_table()
        t3 = t2.translate(table)
        # accented Latin folds silently; removed invisibles or folded non-Latin look-alikes count as obfuscation
        changed = t2 != t or any(ord(c) >= 0x250 and ord(c) in table for c in t2)
        t = t3
    if "\\" in t and len(_ESCAPE.findall(t)) >= 2:
        t2 = _ESCAPE.sub(_unescape, t)
        changed = changed or t2 != t
        t = t2
    if "%" in t:
        t2 = _URLENC.sub(lambda m: unquote(m.group(0)), t)
        changed = changed or t2 != t
        t = t2
    t = t.lower()
    t2 = _SEPARATED.sub(lambda m: _SEP_CHARS.sub("", m.group(0)), t) if _SEP_PAIR.search(t) else t
    changed = changed or t2 != t
    t2 = " ".join(t2.split())
    t = _leet(t2) if _LEET_ANY.search(t2) else t2
    changed = changed or t != t2
    return t, changed


def _unescape(m: re.Match[str]) -> str:
    try:
        return codecs.decode(m.group(0), "unicode_escape")
    except UnicodeDecodeError:
        return m.group(0)


def _leet(t: str) -> str:
    """Fold leetspeak in the (space-separated) words that mix letters with digits or symbols (``h4ck3r``,
    ``@ss``); other words are left alone (``mp3``, ``10am``, ``$5``)."""
    words = t.split(" ")
    changed = False
    for k, w in enumerate(words):
        if w.isalpha() or w.isdigit() or not _LEET_INNER.search(w):
            continue
        words[k] = w.translate(_LEET)
        changed = True
    return " ".join(words) if changed else t


def _readable(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(s) < 6:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in s)
    letters = sum(ch.isalpha() for ch in s)
    if printable < 0.95 * len(s) or letters < 0.5 * len(s) or " " not in s.strip():
        return None
    return s


def _english(t: str) -> float:
    words = _WORD.findall(t)
    common = _common()
    if len(words) < 3:
        return 0.0
    return sum(w in common for w in words) / len(words)


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def views(text: str) -> list[View]:
    """The plain view of ``text`` followed by any decoded payloads and rot13/reversed readings."""
    text = _clip(text)
    plain, changed = fold(text)
    out = [View(plain, "plain", changed)]
    for m in _B64.finditer(text):
        chunk = m.group(0)
        try:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        s = _readable(raw)
        if s is not None:
            out.append(View(fold(s)[0], "base64", True))
    for m in (_HEX.finditer(text) if _DIGIT.search(text) else ()):
        digits = m.group(0)
        if len(digits) % 2:
            digits = digits[:-1]
        s = _readable(bytes.fromhex(digits))
        if s is not None:
            out.append(View(fold(s)[0], "hex", True))
    base = _english(plain[:400])
    if base < 0.3:
        rot = codecs.encode(plain, "rot13")
        if _english(rot[:400]) > base + 0.15:
            out.append(View(rot, "rot13", True))
        rev = plain[::-1]
        if _english(rev[:400]) > base + 0.15:
            out.append(View(rev, "reversed", True))
    return out
