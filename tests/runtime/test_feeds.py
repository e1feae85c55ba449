"""What a model graph reads, computed on the host: one set of inputs for torch and the graphs."""

from __future__ import annotations

import numpy as np

from st_multitask.alignment import split_words
from st_multitask.runtime.feeds import FeedPlan, build_feeds, chunk_text, dummy_feeds, words_read


class _Tokens:
    """A whitespace tokenizer with a 4-piece window (no special tokens), for exact expectations."""

    window = 4

    def offsets(self, text):
        return split_words(text)

    def lengths(self, texts):
        return [len(split_words(t)) for t in texts]

    def batch(self, texts):
        from st_multitask.runtime.feeds import TokenBatch

        rows = [self.offsets(t)[: self.window] for t in texts]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        offsets = np.zeros((len(texts), width, 2), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = 7
            mask[i, : len(row)] = 1
            offsets[i, : len(row)] = row
        return TokenBatch(ids, mask, np.zeros_like(ids), 1 - mask, offsets)


def test_chunks_overlap_by_half_a_window_and_short_texts_are_one():
    text = "a b c d e f g"
    assert chunk_text(text, split_words(text), 4) == ["a b c d", "c d e f", "e f g"]
    assert chunk_text("a b", split_words("a b"), 4) == ["a b"]


def test_window_rows_average_each_long_text_over_its_windows():
    texts = ["one two", "a b c d e f g"]
    plan = FeedPlan(windows=True, words=True)
    feeds, piece_word = build_feeds(plan, _Tokens(), texts, [split_words(t) for t in texts])
    assert feeds["input_ids"].shape[0] == 2 + 3  # each text's first window, then the long one's three
    np.testing.assert_allclose(feeds["window_mean"], [[1, 0, 0, 0, 0], [0, 0, 1 / 3, 1 / 3, 1 / 3]])
    assert piece_word.tolist() == [[0, 1, -1, -1], [0, 1, 2, 3]]
    assert feeds["word_mask"].sum(1).tolist() == [2, 7] and feeds["word_count"].tolist() == [2, 7]
    assert words_read(piece_word, 7).sum(1).tolist() == [2, 4]  # words past the window are not read
    assert list(feeds) == plan.input_names()


def test_a_plan_round_trips_through_the_graph_input_names():
    plan = FeedPlan(words=True, word_shape=True, word_chars=True, windows=True, ngrams={"topic": None})
    again = FeedPlan.from_inputs(plan.input_names(), {"topic": None})
    assert again.input_names() == plan.input_names()


def test_embedding_only_runs_feed_every_other_input_empty():
    names = FeedPlan(words=True, word_shape=True, windows=True, ngrams={"t": None}).input_names()
    batch = _Tokens().batch(["a b", "c"])
    feeds = dummy_feeds(names, batch)
    assert sorted(feeds) == sorted(names)
    assert (feeds["piece_word"] == -1).all() and feeds["window_mean"].tolist() == [[1, 0], [0, 1]]
