"""Unit tests of the tagger's parts: word pieces, gazetteer, features, span decoding (no model run)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.pii.tagger import (
    F_ALLLOW,
    F_ALLUP,
    F_CONT,
    F_GAZ,
    F_HANDLE,
    F_LINE,
    F_PHR,
    F_SHAPE,
    GAZ_CODES,
    LABELS,
    N_FEATS,
    Encoded,
    Featurizer,
    Gazetteer,
    Tagger,
    WordPiece,
    _read,
)


@pytest.fixture(scope="module")
def wordpiece() -> WordPiece:
    return WordPiece(_read("detectors.pii", "data/wordpiece_vocab.txt").decode("utf-8").splitlines())


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer(_read("detectors.pii", "data/gazetteer.txt.gz").decode("utf-8").splitlines())


@pytest.fixture(scope="module")
def featurizer(wordpiece: WordPiece, gazetteer: Gazetteer) -> Featurizer:
    return Featurizer(wordpiece, gazetteer)


def _word_feats(fz: Featurizer, text: str, word: str) -> np.ndarray:
    enc = fz.encode(text)
    i = next(k for k, (s, e) in enumerate(enc.words) if text[s:e] == word)
    return enc.feats[list(enc.piece_word).index(i)]


def test_wordpiece_lowercases_strips_accents_and_splits_cjk(wordpiece: WordPiece) -> None:
    inv = {i: w for w, i in wordpiece.vocab.items()}
    assert [inv[i] for i in wordpiece.pieces("Zweibrücken")] == [inv[i] for i in wordpiece.pieces("zweibrucken")]
    assert [inv[i] for i in wordpiece.pieces("木村陽一")] == ["木", "村", "陽", "一"]
    assert [inv[i] for i in wordpiece.pieces("Paris")] == ["paris"]
    assert wordpiece.pieces("\u0e00\u0e00") == (wordpiece.unk,)  # no Thai piece for an unassigned code point


@pytest.mark.parametrize(
    ("phrase", "codes"),
    [("paris", "CB"), ("germany", "N"), ("new york", "C"), ("bayern", "R"), ("california", "R"), ("street", "S"), ("mr", "T"),
     ("van", "P"), ("maria", "F"), ("nguyen", "L"), ("москва", "C"), ("北京", "C"), ("київ", "CB"), ("القاهرة", "CB")],
)
def test_gazetteer_has_places_names_and_scripts(gazetteer: Gazetteer, phrase: str, codes: str) -> None:
    assert set(codes) <= set(gazetteer.codes(phrase)), gazetteer.codes(phrase)


def test_gazetteer_stop_words_are_not_places(gazetteer: Gazetteer) -> None:
    for word in ("the", "and", "new", "good"):
        assert not set(gazetteer.codes(word)) & set("CBR"), word


def test_casing_features_mark_whole_text_case(featurizer: Featurizer) -> None:
    low = _word_feats(featurizer, "i met maria in lisbon", "maria")
    assert low[F_ALLLOW] == 1 and low[F_SHAPE + 0] == 1
    up = _word_feats(featurizer, "I MET MARIA IN LISBON YESTERDAY", "MARIA")
    assert up[F_ALLUP] == 1 and up[F_SHAPE + 2] == 1
    mixed = _word_feats(featurizer, "I met Maria in Lisbon", "Maria")
    assert mixed[F_ALLLOW] == 0 and mixed[F_ALLUP] == 0 and mixed[F_SHAPE + 1] == 1


def test_other_scripts_have_their_own_shape(featurizer: Featurizer) -> None:
    assert _word_feats(featurizer, "Call Сазонов today", "Сазонов")[F_SHAPE + 6] == 1
    assert _word_feats(featurizer, "Call Sazonov today", "Sazonov")[F_SHAPE + 6] == 0


def test_gazetteer_and_phrase_bits(featurizer: Featurizer) -> None:
    text = "We flew from New York to Berlin"
    city = F_GAZ + GAZ_CODES.index("C")
    assert _word_feats(featurizer, text, "Berlin")[city] == 1
    phrase_city = F_PHR + GAZ_CODES.index("C")
    assert _word_feats(featurizer, text, "New")[phrase_city] == 1 and _word_feats(featurizer, text, "York")[phrase_city] == 1
    assert _word_feats(featurizer, text, "flew")[phrase_city] == 0


def test_line_handle_and_continuation_bits(featurizer: Featurizer) -> None:
    text = "Regards,\nZorblaxia thanks @quentaro"
    assert _word_feats(featurizer, text, "Zorblaxia")[F_LINE] == 1
    assert _word_feats(featurizer, text, "quentaro")[F_HANDLE] == 1
    enc = featurizer.encode(text)
    first = {}
    for k, w in enumerate(enc.piece_word):
        assert enc.feats[k, F_CONT] == (1 if w in first else 0)
        first.setdefault(int(w), k)
    assert enc.feats.shape == (len(enc.ids), N_FEATS)


def test_spans_take_the_most_entity_like_piece_and_merge_words() -> None:
    # words: "Ana"(1 piece) "Lukasiewicz"(2 pieces) "in"(1) "Porto"(1)
    words = [(0, 3), (4, 15), (16, 18), (19, 24)]
    enc = Encoded(np.zeros(5, np.int64), np.zeros((5, N_FEATS), np.float32), np.array([0, 1, 1, 2, 3]), words)
    p = np.zeros((5, len(LABELS)), np.float32)
    p[:, 0] = 1.0
    person, location = LABELS.index("PERSON"), LABELS.index("LOCATION")
    p[0] = [0.1, 0.9, 0, 0]
    p[1] = [0.95, 0.05, 0, 0]  # first piece of the surname looks like O ...
    p[2] = [0.3, 0.7, 0, 0]  # ... its second piece does not: the word is tagged
    p[4] = [0.8, 0, 0.2, 0]  # 1 - P(O) = 0.2
    spans = Tagger.spans(enc, p, threshold=0.15)
    assert [(s.start, s.end, s.label) for s in spans] == [(0, 15, LABELS[person]), (19, 24, LABELS[location])]
    assert Tagger.spans(enc, p, threshold=0.25)[-1].label == "PERSON"  # Porto below the threshold
