"""Build the name gazetteer data files ``detectors/pii/data/{first,last}_names.txt.gz`` from Faker's person providers.

``python scripts/build_pii_names.py`` reads the first- and last-name lists of Faker's
Latin-script person providers (offline, no download), keeps capitalised alphabetic names,
adds accent-folded spellings (``García`` → ``Garcia``: chat text often drops accents),
and writes them as sorted, gzip-compressed lists (one name per line). Names that are also
common English words (``Will``, ``Young``, ``Brown``) stay in the lists: the detector
(:mod:`detectors.pii.names`) sets them apart at import and trusts them only next to a
known first name. Faker is needed only here; the detector reads the
data files (a few milliseconds) and never imports Faker. Deterministic: same Faker
version, same file.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import unicodedata
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "detectors" / "pii" / "data"

LOCALES: tuple[str, ...] = (
    "en_US", "en_GB", "en_IE", "en_IN", "en_NZ", "en_KE", "en_NG", "en_PK", "ga_IE",
    "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA", "nl_NL", "nl_BE", "es_ES", "es_MX", "es_AR", "es_CO", "es_CL",
    "it_IT", "pt_BR", "pt_PT", "ro_RO", "pl_PL", "cs_CZ", "sk_SK", "hu_HU", "hr_HR", "sl_SI", "lt_LT", "lv_LV",
    "et_EE", "fi_FI", "sv_SE", "no_NO", "da_DK", "is_IS", "tr_TR", "az_AZ", "id_ID",
    "yo_NG", "ig_NG", "ha_NG", "sw", "zu_ZA", "tw_GH", "vi_VN",
)
"""Faker person locales whose name lists are in Latin script."""

_FIRST_ATTRS = ("first_names", "first_names_female", "first_names_male", "first_names_unisex", "first_names_nonbinary")
_LAST_ATTRS = ("last_names", "last_names_female", "last_names_male", "unisex_last_names", "male_last_names", "female_last_names")
_ROMANIZED = {"ja_JP": ("first_name_pairs", "last_name_pairs")}  # (kanji, kana, romaji) triples

def fold(name: str) -> str:
    """Accent-folded spelling (``Nguyễn`` → ``Nguyen``); unchanged for plain ASCII."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)).replace("ł", "l").replace("Ł", "L")


def _plausible(name: str) -> bool:
    parts = name.replace("'", "-").replace("’", "-").split("-")
    return (
        2 <= len(name) <= 24
        and all(p and p.isalpha() for p in parts)
        and name[0].isupper()
        and not name.isupper()
        and all(c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in name if c.isalpha())
    )


def english_words() -> set[str]:
    """Faker's English lorem word list (about 1,000 common words), lower case."""
    from faker.providers.lorem.en_US import Provider as Lorem

    return {w.lower() for w in Lorem.word_list}


def collect() -> tuple[set[str], set[str]]:
    """(first names, last names) over :data:`LOCALES`, folded spellings added."""
    first: set[str] = set()
    last: set[str] = set()
    for loc in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        for attrs, into in ((_FIRST_ATTRS, first), (_LAST_ATTRS, last)):
            for attr in attrs:
                values = getattr(provider, attr, ())
                if not isinstance(values, (tuple, list, dict, set, frozenset)):
                    continue  # some providers expose computed properties
                for raw in values:
                    for piece in str(raw).split():  # multi-word entries ("Van Dyke") count per token
                        into.add(piece)
    for loc, (fattr, lattr) in _ROMANIZED.items():
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        first.update(p[2] for p in getattr(provider, fattr, ()))
        last.update(p[2] for p in getattr(provider, lattr, ()))
    out = []
    for names in (first, last):
        names |= {fold(n) for n in names}
        out.append({n for n in names if _plausible(n)})
    return out[0], out[1]


def write(first: set[str], last: set[str], folder: Path = DATA) -> None:
    """Write the three lists as sorted, gzip-compressed data files (one entry per line, a comment header)."""
    source = "built by scripts/build_pii_names.py from Faker's person providers (MIT); one entry per line"
    lists = {
        "first_names.txt.gz": (first, f"first names, as written ({len(LOCALES)} Latin-script locales, romanised Japanese)"),
        "last_names.txt.gz": (last, "last names, as written"),
        "english_words.txt.gz": (english_words(), "common English words (Faker's en_US lorem list, MIT)"),
    }
    for name, (words, what) in lists.items():
        body = f"# {what}\n# {source}\n" + "\n".join(sorted(words)) + "\n"
        (folder / name).write_bytes(gzip.compress(body.encode("utf-8"), mtime=0))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=DATA, help="folder of the data files")
    args = ap.parse_args(argv)
    first, last = collect()
    write(first, last, args.output)
    print(f"wrote {len(first)} first and {len(last)} last names to {args.output}")


if __name__ == "__main__":
    main()
