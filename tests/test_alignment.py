from __future__ import annotations

import pytest
import torch

from st_multitask.alignment import (
    decode_bio,
    piece_to_word,
    pool_words,
    repair_bio,
    split_words,
    words_to_text,
)


def test_split_words_conll_style():
    text = "Apple is buying a U.K. startup for $1,000.50 (don't ask), São Paulo-based!"
    words = [text[s:e] for s, e in split_words(text)]
    assert words == [
        "Apple",
        "is",
        "buying",
        "a",
        "U.K.",
        "startup",
        "for",
        "$",
        "1,000.50",
        "(",
        "do",
        "n't",
        "ask",
        ")",
        ",",
        "São",
        "Paulo-based",
        "!",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Apple's new factory", ["Apple", "'s", "new", "factory"]),
        (
            "I'm sure they’re right, we'll see",
            ["I", "'m", "sure", "they", "’re", "right", ",", "we", "'ll", "see"],
        ),
        ("It WON'T work, can't you see", ["It", "WO", "N'T", "work", ",", "ca", "n't", "you", "see"]),
        (
            "O'Neil and rock'n'roll, the Jones' house",
            ["O'Neil", "and", "rock'n'roll", ",", "the", "Jones", "'", "house"],
        ),
    ],
)
def test_split_words_splits_clitics_as_conll_does(text, words):
    assert [text[s:e] for s, e in split_words(text)] == words


def test_words_to_text_spans():
    text, spans = words_to_text(["EU", "rejects", "German", "call"])
    assert text == "EU rejects German call"
    assert [text[s:e] for s, e in spans] == ["EU", "rejects", "German", "call"]


def test_piece_to_word_maps_pieces_and_skips_specials():
    spans = [(0, 5), (6, 13)]  # "Zürich bankers" style: two words
    offsets = [(0, 0), (0, 3), (3, 5), (6, 10), (10, 13), (0, 0)]
    assert piece_to_word(offsets, spans) == [-1, 0, 0, 1, 1, -1]


def test_pool_words_first_and_mean():
    states = torch.arange(12, dtype=torch.float).reshape(1, 6, 2)
    piece_word = torch.tensor([[-1, 0, 0, 1, -1, -1]])
    first = pool_words(states, piece_word, 3, "first")
    assert first[0].tolist() == [[2, 3], [6, 7], [0, 0]]  # word 2 has no piece: zeros
    mean = pool_words(states, piece_word, 2, "mean")
    assert mean[0].tolist() == [[3, 4], [6, 7]]


def test_repair_bio():
    assert repair_bio(["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-ORG",
        "B-LOC",
    ]


def test_decode_bio_offsets_always_match_text():
    text = "Angela Merkel met Emmanuel Macron in Paris ."
    spans = split_words(text)
    tags = ["B-PER", "I-PER", "O", "I-PER", "I-PER", "O", "B-LOC", "O"]
    entities = decode_bio(tags, [0.9] * 8, spans, text)
    assert [(e["text"], e["label"]) for e in entities] == [
        ("Angela Merkel", "PER"),
        ("Emmanuel Macron", "PER"),
        ("Paris", "LOC"),
    ]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)


def test_decode_bio_adjacent_entities_and_scores():
    text, spans = words_to_text(["New", "York", "Berlin"])
    entities = decode_bio(["B-LOC", "I-LOC", "B-LOC"], [0.8, 0.6, 0.9], spans, text)
    assert [(e["text"], e["score"]) for e in entities] == [("New York", 0.7), ("Berlin", 0.9)]


def test_word_shapes_see_what_an_uncased_model_cannot():
    from st_multitask.alignment import SHAPE_FEATURES, word_shapes

    text = "NASA and iPhone sales rose 5 % . Then Apple"
    spans = split_words(text)
    shapes = word_shapes([text], [spans], len(spans))[0]
    feature = {name: i for i, name in enumerate(SHAPE_FEATURES)}
    words = [text[s:e] for s, e in spans]
    assert shapes[words.index("NASA"), feature["upper"]] == 1
    assert (
        shapes[words.index("iPhone"), feature["mixed"]] == 0
        and shapes[words.index("iPhone"), feature["inner_cap"]] == 1
    )
    assert shapes[words.index("sales"), feature["lower"]] == 1
    assert shapes[words.index("5"), feature["digit"]] == 1
    assert shapes[words.index("%"), feature["punct"]] == 1
    assert (
        shapes[words.index("Then"), feature["after_punct"]] == 1
        and shapes[words.index("Then"), feature["title"]] == 1
    )
    assert shapes[0, feature["first"]] == 1
