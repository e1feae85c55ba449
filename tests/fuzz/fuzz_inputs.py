"""Generated inputs for the fuzz tests: odd bytes and near-valid documents of every format we read.

tests/fuzz/conftest.py puts this folder on sys.path, so every fuzz test module imports them from here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import strategies as st

SPECIALS = [
    "\x00", "\ufeff", "\u202e", "\u2066", "\u200b", "\u200d", "\u2028", "\u2029", "\x85", "\x0b", "\x0c",
    "\x1c", "\x1e", "\r", "\n", "\r\n", "\t", " ", ",", '"', "'", "\\", "{", "}", "[", "]", ":", "-", "#",
    "&a ", "*a", "!!", "<<: ", "? ", "--- ", "...", "%YAML 1.1", "|", ">", "@", "`", "é", "日本", "🙂",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "NaN", "Infinity", "-DOCSTART-", "O", "B-PER", "I-ORG", "B-",
    "text", "label", "tokens", "tags", "null", "true", "1e999", "9" * 5000, "[" * 2000, "x" * 140_000,
]  # fmt: skip
ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-be", "latin-1", "cp1252", "shift_jis"]

odd_text = st.lists(st.sampled_from(SPECIALS) | st.text(max_size=12), max_size=30).map("".join)


@st.composite
def encoded(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """``text`` in some encoding, sometimes cut mid-character or with a byte changed."""
    data = draw(text).encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if data and draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=4)) + data[cut + draw(st.integers(0, 3)) :]
    return data


def odd_bytes(text: st.SearchStrategy[str] = odd_text) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), encoded(text))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    # small, or far too big to allocate (2**62 fails at once; sizes in between would really allocate)
    st.integers(-1000, 1000),
    st.sampled_from([2**62, 2**63, 10**30, -(2**63)]),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(SPECIALS[:-3]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) inside a JSON document, depth first."""
    out: list[tuple[Any, Any]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in list(items):
        out.append((doc, key))
        out.extend(_slots(value))
    return out


@st.composite
def near_valid(draw: st.DrawFn, base: Any, keys: list[str] = ()) -> Any:  # type: ignore[assignment]
    """``base`` with one to four edits: a value replaced by another type, a key dropped or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc)
        if not slots:
            return draw(json_values)
        container, key = draw(st.sampled_from(slots))
        edit = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if edit == "replace":
            container[key] = draw(json_values)
        elif edit == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.sampled_from(list(keys)) | st.text(max_size=8))] = draw(json_values)
        else:
            container.append(draw(json_values))
    return doc


def dumped(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """A serialized document, sometimes truncated or with a few bytes changed."""
    edit = draw(st.sampled_from(["keep", "keep", "truncate", "splice"]))
    if edit == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if edit == "splice":
        at = draw(st.integers(0, len(data)))
        return (
            data[:at]
            + draw(st.binary(max_size=3) | st.sampled_from(SPECIALS).map(str.encode))
            + data[at + 1 :]
        )
    return data


table_cell = (
    st.sampled_from(["text", "label", "", '"', '""', "a,b", "a\tb", '"x\ny"', "x" * 140_000]) | odd_text
)


@st.composite
def tables(draw: st.DrawFn, delimiter: str) -> bytes:
    """A CSV/TSV file: a header (usually with text and label) and rows of odd cells."""
    header = draw(st.lists(table_cell, max_size=4))
    if draw(st.booleans()):
        header = ["text", "label", *header]
    rows = draw(st.lists(st.lists(table_cell, max_size=5), max_size=5))
    lines = [delimiter.join(header), *(delimiter.join(row) for row in rows)]
    return draw(damaged("\n".join(lines).encode("utf-8", errors="replace")))


record = st.dictionaries(
    st.sampled_from(["text", "label", "tokens", "tags"]) | st.text(max_size=6), json_values, max_size=4
)
valid_record = st.fixed_dictionaries(
    {"text": st.text(min_size=1), "label": st.text(min_size=1)}, optional={"x": json_values}
)
valid_tagged = st.lists(
    st.tuples(st.text(min_size=1), st.sampled_from(["O", "B-PER", "I-PER"])), max_size=5
).map(lambda pairs: {"tokens": [w for w, _ in pairs], "tags": [t for _, t in pairs]})


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    """JSON lines: objects near the shape the readers want, raw odd lines, huge numbers, deep nesting."""
    lines = draw(
        st.lists(
            st.one_of(
                valid_record.map(json.dumps),
                valid_tagged.map(json.dumps),
                near_valid({"text": "a text", "label": "pos"}, ["text", "label"]).map(json.dumps),
                near_valid({"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}, ["tokens", "tags"]).map(
                    json.dumps
                ),
                record.map(json.dumps),
                json_values.map(json.dumps),
                st.sampled_from(['{"text": 1' + "0" * 5000 + "}", "[" * 5000, '{"text": "\\ud800"}', ""]),
                odd_text,
            ),
            max_size=6,
        )
    )
    return draw(damaged("\n".join(lines).encode("utf-8", errors="surrogatepass")))


conll_line = st.one_of(
    st.tuples(
        st.sampled_from(["EU", "rejects", "-DOCSTART-", "x" * 140_000]) | st.text(max_size=6),
        st.sampled_from(["O", "B-PER", "I-PER", "B-", "I-", "PER", "o", "B-PER X", ""]),
        st.sampled_from([" ", "\t", "  ", " NN B-NP "]),
    ).map(lambda t: f"{t[0]}{t[2]}{t[1]}"),
    st.just(""),
    odd_text,
)


BASE_RECIPE = {
    "model": {"backbone": None},
    "tasks": {
        "s": {"head": {"kind": "mlp", "hidden": [4]}, "train": "data/s.csv", "dev": "data/s.csv"},
        "n": {"head": {"kind": "token"}, "train": "data/n.conll"},
    },
    "training": {"epochs": 1, "batch_size": 2, "sampling": "proportional", "freeze": ["backbone"]},
}
RECIPE_KEYS = [
    "model", "tasks", "training", "head", "kind", "train", "dev", "test", "text_column", "label_column",
    "labels", "multi_label_separator", "format", "hidden", "long", "epochs", "batch_size", "learning_rate",
    "warmup_ratio", "loss_weights", "task_order", "freeze", "average_epochs", "lr_decay", "seed",
    "metric_for_best", "max_grad_norm", "unfreeze_every", "early_stopping_patience", "sampling_temperature",
]  # fmt: skip


@st.composite
def recipes(draw: st.DrawFn, base: dict[str, Any] = BASE_RECIPE) -> tuple[str, bytes]:
    """(suffix, bytes) of a recipe: near-valid YAML or JSON (edits of ``base``), or odd bytes."""
    doc = draw(near_valid(base, RECIPE_KEYS))
    kind = draw(st.sampled_from(["yaml", "json", "odd"]))
    if kind == "json":
        return ".json", draw(damaged(dumped(doc)))
    if kind == "yaml":
        text = yaml.safe_dump(doc, allow_unicode=True)
        return draw(st.sampled_from([".yaml", ".yml"])), draw(damaged(text.encode("utf-8", "surrogatepass")))
    return draw(st.sampled_from([".yaml", ".json"])), draw(odd_bytes())


MANIFEST_KEYS = ["format_version", "dimension", "backbone", "heads", "type", "name", "kind", "level",
                 "labels", "files", "graphs", "metrics", "config.json", "model.safetensors"]  # fmt: skip


INDEX_KEYS = ["format", "format_version", "files", "model", "index", "roles", "count", "generation",
              "texts", "bytes", "sha256", "name", "dim", "fingerprint", "kind", "storage", "precision",
              "rescore", "int8_scale", "column", "sources"]  # fmt: skip

conll_files = (
    st.lists(conll_line, max_size=12)
    .map(lambda lines: "\n".join(lines).encode("utf-8", "replace"))
    .flatmap(damaged)
)


def cli_examples() -> int:
    """Generated files per command in the CLI fuzz test: a handful in CI, 30 in a thorough run."""
    from hypothesis import settings

    return 30 if settings.get_current_profile_name() == "thorough" else 5
