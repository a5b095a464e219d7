"""The audit hash chain as pure functions: canonical form, chaining, and what verification catches."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

import pytest

from governance.audit import (
    GENESIS,
    ExportChain,
    canonical_json,
    chain_digest,
    content_digest,
    entry_content,
    export_jsonl,
    verify_export_jsonl,
    verify_raw_rows,
    verify_rows,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _chain(n: int, start: int = 1, prev: str = GENESIS) -> list[tuple[int, str, str, str, str]]:
    rows = []
    for seq in range(start, start + n):
        content = entry_content(seq=seq, at=T0 + timedelta(seconds=seq), actor=f"u{seq % 3}", action="x.changed",
                                tenant="acme", target_type="t", target_id=str(seq), before={"v": seq - 1},
                                after={"v": seq})
        ch = content_digest(content)
        h = chain_digest(prev, ch)
        rows.append((seq, prev, ch, h, content))
        prev = h
    return rows


class Colour(Enum):
    red = "red"


def test_canonical_json_is_order_free_compact_and_typed() -> None:
    a = canonical_json({"b": 1, "a": [1, {"z": 2, "y": "é"}]})
    b = canonical_json({"a": [1, {"y": "é", "z": 2}], "b": 1})
    assert a == b == '{"a":[1,{"y":"é","z":2}],"b":1}'
    naive = datetime(2026, 1, 1, 12, 0)
    plus2 = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert canonical_json({"t": naive}) == canonical_json({"t": plus2}) == '{"t":"2026-01-01T12:00:00+00:00"}'
    assert canonical_json({"c": Colour.red, "s": {3, 1}}) == '{"c":"red","s":[1,3]}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_digests_are_sha256_of_the_documented_bytes() -> None:
    content = entry_content(seq=1, at=T0, actor="a", action="b", tenant=None, target_type="t", target_id="i")
    assert json.loads(content)["seq"] == 1 and json.loads(content)["tenant"] is None
    assert content_digest(content) == hashlib.sha256(content.encode()).hexdigest()
    assert chain_digest(GENESIS, "ab") == hashlib.sha256((GENESIS + "ab").encode()).hexdigest()


def test_an_intact_chain_verifies() -> None:
    rows = _chain(50)
    result = verify_rows(rows)
    assert result.ok and result.checked == 50 and result.head_seq == 50 and result.head_hash == rows[-1][3]
    assert verify_rows([]).ok and verify_rows([]).head_hash == GENESIS


@pytest.mark.parametrize("tamper, broken, why", [
    ("edit_content", 7, "content"),
    ("edit_hash", 7, "hash"),
    ("rehash_one", 8, "prev_hash"),
    ("delete", 7, "gap"),
    ("swap", 7, "gap"),
    ("reorder_renumbered", 7, "prev_hash"),
])
def test_verification_names_the_first_broken_entry(tamper: str, broken: int, why: str) -> None:
    rows = _chain(12)
    i = broken - 1
    if tamper == "edit_content":
        seq, p, ch, h, c = rows[i]
        rows[i] = (seq, p, ch, h, c.replace('"v":7', '"v":70'))
    elif tamper == "edit_hash":
        seq, p, ch, h, c = rows[i]
        rows[i] = (seq, p, ch, "f" * 64, c)
    elif tamper == "rehash_one":  # a forger recomputes entry 7 after editing it: entry 8 no longer links
        seq, p, _, _, c = rows[6]
        c = c.replace('"v":7', '"v":70')
        ch = content_digest(c)
        rows[6] = (seq, p, ch, chain_digest(p, ch), c)
    elif tamper == "delete":
        del rows[i]
    elif tamper == "swap":
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif tamper == "reorder_renumbered":
        a, b = rows[i], rows[i + 1]
        rows[i], rows[i + 1] = (a[0],) + b[1:], (b[0],) + a[1:]
    result = verify_rows(rows)
    assert not result.ok and result.first_broken_seq == broken and why in (result.reason or "")
    assert result.checked == broken - 1


def test_redacted_entries_still_link_and_an_export_verifies_alone() -> None:
    rows = _chain(10, start=21, prev="a" * 64)
    redacted = [r if r[0] % 2 else r[:4] + (None,) for r in rows]
    assert verify_rows(redacted, start_seq=21, prev_hash="a" * 64).ok
    chain = ExportChain(21, 30, 10, "a" * 64, rows[-1][3], 40, "b" * 64)
    tenants = [("acme" if r[0] % 2 else "globex") for r in rows]
    lines = list(export_jsonl([r + (t,) for r, t in zip(rows, tenants)], chain, tenants=["acme"]))
    assert sum('"redacted":true' in line for line in lines) == 5 and "globex" not in "".join(lines)
    assert verify_export_jsonl(lines).ok
    assert not verify_export_jsonl(lines[:-1]).ok  # no chain line: truncated
    assert not verify_export_jsonl(lines[:4] + lines[5:]).ok  # an entry removed
    wrong_anchor = json.loads(lines[-1])
    wrong_anchor["chain"]["anchor_prev_hash"] = GENESIS
    assert not verify_export_jsonl(lines[:-1] + [json.dumps(wrong_anchor)]).ok


def _copy_line(row: tuple[int, str, str, str, str]) -> bytes:
    """A row as PostgreSQL's COPY text format sends it (backslash, tab, newline escaped)."""
    esc = row[4].replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return ("\t".join([str(row[0]), row[1], row[2], row[3], esc]) + "\n").encode("utf-8")


def test_the_copy_fast_path_agrees_with_the_plain_one() -> None:
    rows = []
    prev = GENESIS
    for seq, note in enumerate(['plain', 'quote " and back\\slash', 'tab\there', 'é ü 中文', 'new\nline'], start=1):
        content = entry_content(seq=seq, at=T0, actor="a", action="x", tenant=None, target_type="t", target_id=note,
                                after={"note": note})
        ch = content_digest(content)
        rows.append((seq, prev, ch, chain_digest(prev, ch), content))
        prev = rows[-1][3]
    lines = [_copy_line(r) for r in rows]
    assert any(b"\\\\" in line for line in lines)
    fast, plain = verify_raw_rows(lines, unescape=True), verify_rows(rows)
    assert fast.ok and plain.ok and (fast.head_seq, fast.head_hash) == (plain.head_seq, plain.head_hash) == (5, prev)
    tampered = lines[:2] + [lines[2].replace(b"tab", b"TAB")] + lines[3:]
    bad = verify_raw_rows(tampered, unescape=True)
    assert not bad.ok and bad.first_broken_seq == 3 and "content" in (bad.reason or "")
    assert verify_raw_rows(lines[:1] + lines[2:], unescape=True).first_broken_seq == 2
