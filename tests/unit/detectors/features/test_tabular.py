"""Per-event feature extraction: lengths, layout, refusals, script and language."""

import math

from detectors.features.tabular import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    PROMPT_KEY,
    dominant_script,
    extract_features,
    features_from_record,
    guess_language,
    is_refusal,
)


def test_counts_and_layout():
    resp = "## Steps\n\n1. Boil the water.\n2. Add salt!\n\n```python\nprint('x')\n```\nDone"
    f = extract_features("How do I cook pasta?", resp, completion_tokens=30, latency_ms=812.5,
                         cost_usd=0.002, finish_reason="STOP")
    assert set(f) == set(NUMERIC_FEATURES) | set(CATEGORICAL_FEATURES) | {PROMPT_KEY}
    assert f["prompt_chars"] == len("How do I cook pasta?")
    assert f["prompt_words"] == 5
    assert f["response_list_items"] == 2
    assert f["response_code_blocks"] == 1
    assert f["response_headings"] == 1
    assert f["response_lines"] == resp.count("\n") + 1
    assert f["completion_tokens"] == 30 and f["latency_ms"] == 812.5 and f["cost_usd"] == 0.002
    assert f["finish_reason"] == "stop"
    assert f["refusal"] == "no"
    assert math.isnan(f["prompt_tokens"])


def test_missing_and_bad_numbers_are_nan():
    f = extract_features("", "", latency_ms="fast", cost_usd=float("inf"))
    assert math.isnan(f["latency_ms"]) and math.isnan(f["cost_usd"])
    assert f["response_chars"] == 0 and f["response_lines"] == 0
    assert f["finish_reason"] == "unknown" and f["response_language"] == "none"


def test_refusal_markers():
    assert is_refusal("I'm sorry, but I can't help with that request.")
    assert is_refusal("As an AI language model, I cannot provide medical advice.")
    assert is_refusal("I cannot assist with creating malware.")
    assert not is_refusal("Sure, here is how you sort a list in Python.")
    assert not is_refusal("Sorry for the confusion earlier; the answer is 42.")


def test_script_and_language():
    assert dominant_script("Привет, как дела?") == "cyrillic"
    assert dominant_script("こんにちは世界") == "kana"
    assert dominant_script("你好世界") == "han"
    assert dominant_script("12345 !!") == "none"
    assert guess_language("The cat is on the table and it is sleeping.") == "en"
    assert guess_language("El gato está en la mesa y no quiere salir de la casa.") == "es"
    assert guess_language("Der Hund ist nicht in der Küche und die Katze schläft.") == "de"
    assert guess_language("مرحبا بالعالم") == "ar"


def test_record_aliases():
    f = features_from_record({"prompt": "hi", "response": "hello there", "usage": {"output_tokens": 3},
                              "input_tokens": 1, "cost": 0.1})
    assert f["completion_tokens"] == 3 and f["prompt_tokens"] == 1 and f["cost_usd"] == 0.1


def test_no_text_in_features():
    secret = "john.doe@example.com"
    f = extract_features(f"mail {secret}", f"I wrote to {secret}")
    assert all(secret not in str(v) for v in f.values())


def test_prompt_key_identifies_the_prompt_without_its_text():
    key = extract_features("How do I cook pasta?", "Boil water.")[PROMPT_KEY]
    assert isinstance(key, str) and len(key) == 16 and int(key, 16) >= 0
    assert extract_features("  how do I   cook PASTA? ", "Other answer.")[PROMPT_KEY] == key  # case, spacing
    assert extract_features("How do I cook rice?", "Boil water.")[PROMPT_KEY] != key
    assert "pasta" not in key.lower()
