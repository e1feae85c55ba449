"""Texts and labelled examples from the user's files (or a stream), with validation by line.

The files are read by :mod:`st_multitask.readers` (one reader per format: plain text, CSV, TSV,
JSON lines, a JSON array, Parquet); this module turns their rows into texts and examples. Files are
streamed, so a million-line input costs no more memory than a thousand-line one. Every problem is
reported with the file name and line number and a way out:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "texts.txt"
    >>> _ = path.write_text("first text\\n\\nsecond text\\n")
    >>> list(iter_texts(path))
    [(1, 'first text'), (3, 'second text')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

from .errors import InputError
from .readers import (
    DECODE_ERRORS,
    FORMATS,
    DecodeErrors,
    Format,
    ReadReport,
    detect_format,
    iter_rows,
    source_name,
)

if TYPE_CHECKING:
    import pandas as pd

    from .readers import RecordFormat

__all__ = [
    "BLANK_MODES",
    "DECODE_ERRORS",
    "TEXT_FORMATS",
    "BlankMode",
    "ReadReport",
    "SentenceExamples",
    "TokenExamples",
    "check_labels_known",
    "concatenate",
    "detect_format",
    "iter_texts",
    "read_sentence_examples",
    "read_texts",
    "read_token_examples",
]

TEXT_FORMATS = FORMATS  # one table of formats, owned by st_multitask.readers
BlankMode = Literal["skip", "error"]  # what to do with a blank line: skip it, or an error
BLANK_MODES: tuple[BlankMode, ...] = ("skip", "error")
_RECORD_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")


def iter_texts(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    column: str | None = None,
    fmt: Format | None = None,
    errors: DecodeErrors = "strict",
    blank: BlankMode = "skip",
    report: ReadReport | None = None,
) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, text)`` from a file, ``"-"`` (stdin) or a binary stream.

    Args:
        source: path, ``"-"`` or an open binary stream.
        column: column (CSV/TSV/Parquet) or key (JSON, JSON lines) holding the text; default ``"text"``.
        fmt: ``lines``, ``csv``, ``tsv``, ``jsonl``, ``json`` or ``parquet``; default from the file
            extension (:func:`~st_multitask.readers.detect_format`: ``.json`` is one JSON array of
            records or strings, ``.jsonl`` one object a line).
        errors: ``strict`` fails on invalid UTF-8 naming the line; ``replace`` substitutes U+FFFD.
        blank: ``skip`` blank texts (counted in ``report.blank``) or raise an ``error`` naming the line.
        report: a :class:`ReadReport` to fill in.

    Raises:
        InputError: missing file, directory, empty or binary file, invalid UTF-8, malformed CSV or
            JSON, missing column, blank line (with ``blank="error"``), no text at all.
    """
    if errors not in DECODE_ERRORS:
        raise InputError(f"Unknown errors mode {errors!r}. Valid: {', '.join(DECODE_ERRORS)}.")
    if blank not in BLANK_MODES:
        raise InputError(f"Unknown blank mode {blank!r}. Valid: {', '.join(BLANK_MODES)}.")
    name = source_name(source)
    if fmt is None:
        fmt = "lines" if not isinstance(source, (str, os.PathLike)) else detect_format(source)
    if fmt not in TEXT_FORMATS:
        raise InputError(f"Unknown input format {fmt!r}. Valid: {', '.join(TEXT_FORMATS)}.")
    if column is not None and fmt == "lines":
        raise InputError(
            f"--column applies to CSV, TSV, JSON, JSONL and Parquet input; {name} is read as one text a line."
        )
    report = report if report is not None else ReadReport()
    key = column or "text"
    for number, row in iter_rows(source, fmt, errors, report, [] if fmt == "lines" else [key]):
        if isinstance(row, dict):
            text = row.get(key, "")
            if not isinstance(text, str):
                raise InputError(f"{name} line {number}: {key!r} is a {type(text).__name__}, not a string.")
        else:
            text = row
        if not text.strip():
            if blank == "error":
                raise InputError(
                    f"{name} line {number} is blank; in this mode every line must hold a text "
                    "(a skipped line would shift the pairing)."
                )
            report.blank += 1
            continue
        report.texts += 1
        yield number, text
    if report.texts == 0:
        raise InputError(
            f"{name} has no text: only blank lines" + (" or empty cells." if fmt != "lines" else ".")
        )


def read_texts(source: str | os.PathLike[str] | BinaryIO, **kwargs: Any) -> list[str]:
    """All texts of a source as a list (see :func:`iter_texts` for the options)."""
    return [text for _, text in iter_texts(source, **kwargs)]


# ---------------------------------------------------------------------------------------------
# labelled examples for training and evaluation

IOB2 = re.compile(r"^(O|[BI]-\S+)$")


@dataclass
class SentenceExamples:
    """Texts with one label each (or a list of labels each, for multi-label tasks)."""

    texts: list[str]
    labels: list[Any]
    source: str = "<data>"
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def label_set(self) -> list[str]:
        seen: dict[str, None] = {}
        for label in self.labels:
            for item in label if isinstance(label, list) else [label]:
                seen.setdefault(item, None)
        return sorted(seen)


@dataclass
class TokenExamples:
    """Pre-split sentences with one IOB2 tag a word."""

    words: list[list[str]]
    tags: list[list[str]]
    source: str = "<data>"
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    def label_set(self) -> list[str]:
        """Every tag seen, with B-/I- completed for each entity type, ``O`` first."""
        types = sorted({tag[2:] for row in self.tags for tag in row if tag != "O"})
        return ["O", *[f"{prefix}-{t}" for t in types for prefix in "BI"]]


def concatenate(parts: Sequence[SentenceExamples | TokenExamples]) -> SentenceExamples | TokenExamples:
    """Several sources of one task as one set, in order; ``source`` names them all.

    >>> a = SentenceExamples(["good"], ["positive"], "a.csv", [2])
    >>> b = SentenceExamples(["bad"], ["negative"], "b.csv", [2])
    >>> joined = concatenate([a, b])
    >>> joined.texts, joined.source
    (['good', 'bad'], 'a.csv + b.csv')
    """
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    source = " + ".join(p.source for p in parts)
    lines = [n for p in parts for n in p.lines] if all(len(p.lines) == len(p) for p in parts) else []
    if isinstance(first, TokenExamples):
        tokens = [p for p in parts if isinstance(p, TokenExamples)]
        if len(tokens) != len(parts):
            raise InputError(f"Cannot join token data with sentence data ({source}).")
        return TokenExamples(
            [w for p in tokens for w in p.words], [t for p in tokens for t in p.tags], source, lines
        )
    sentences = [p for p in parts if isinstance(p, SentenceExamples)]
    if len(sentences) != len(parts):
        raise InputError(f"Cannot join sentence data with token data ({source}).")
    return SentenceExamples(
        [t for p in sentences for t in p.texts], [lab for p in sentences for lab in p.labels], source, lines
    )


def read_sentence_examples(
    source: str | os.PathLike[str] | pd.DataFrame,
    text_column: str = "text",
    label_column: str = "label",
    multi_label_separator: str | None = None,
    fmt: str | None = None,
) -> SentenceExamples:
    """Labelled sentences from CSV, TSV, JSON lines, a JSON array, Parquet or a pandas DataFrame.

    Every problem names the file and line: a missing column (with the columns that exist), an
    empty text or label, an empty file. ``multi_label_separator`` (e.g. ``";"``) splits a label
    cell into several labels; in JSON (lines) a list of labels works as it is.

    >>> import pandas as pd
    >>> data = read_sentence_examples(pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "neg"]}))
    >>> data.label_set()
    ['neg', 'pos']
    """
    import pandas as pd

    required = [text_column, label_column]
    if isinstance(source, pd.DataFrame):
        name = "DataFrame"
        missing = [c for c in required if c not in source.columns]
        if missing:
            found = ", ".join(repr(c) for c in source.columns)
            raise InputError(f"Expected a column {missing[0]!r} in the DataFrame; found {found}.")
        rows: Iterator[tuple[int, Any]] = (
            (i + 1, {text_column: t, label_column: lab})
            for i, (t, lab) in enumerate(zip(source[text_column], source[label_column]))
        )
    else:
        name = source_name(source)
        fmt = fmt or detect_format(source)
        if fmt not in _RECORD_FORMATS:
            raise InputError(
                f"{name}: sentence data must be .csv, .tsv, .jsonl, .json or .parquet (got {fmt!r}); "
                "pass the right extension."
            )
        rows = iter_rows(source, cast("RecordFormat", fmt), "strict", ReadReport(), required)
    examples = SentenceExamples([], [], name, [])
    for number, row in rows:
        if not row:  # blank line
            continue
        text, label = row[text_column], row[label_column]
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{name} line {number}: the text is empty.")
        labels: str | list[str]
        if isinstance(label, list):
            labels = [str(x) for x in label]
        elif label is None or (isinstance(label, float) and label != label) or not str(label).strip():
            raise InputError(f"{name} line {number}: the label is empty.")
        elif multi_label_separator:
            labels = [x.strip() for x in str(label).split(multi_label_separator) if x.strip()]
        else:
            labels = str(label).strip()
        examples.texts.append(text)
        examples.labels.append(labels)
        examples.lines.append(number)
    if not examples.texts:
        raise InputError(f"{name} holds no examples.")
    return examples


def read_token_examples(source: str | os.PathLike[str], fmt: str | None = None) -> TokenExamples:
    """Tagged sentences from CoNLL (token first column, tag last, blank line between sentences,
    ``-DOCSTART-`` skipped) or records ``{"tokens": [...], "tags": [...]}`` (JSON lines, a JSON
    array, Parquet). Tags are IOB2.
    """
    name = source_name(source)
    detected = detect_format(source)
    fmt = fmt or (detected if detected in ("jsonl", "json", "parquet") else "conll")
    examples = TokenExamples([], [], name, [])

    def check_tag(tag: str, number: int) -> None:
        if not isinstance(tag, str) or not IOB2.match(tag):
            raise InputError(f"{name} line {number}: tag {tag!r} is not IOB2 (O, B-TYPE or I-TYPE).")

    words: list[str]
    tags: list[str]
    if fmt in ("jsonl", "json", "parquet"):
        record_format = cast("RecordFormat", fmt)
        for number, record in iter_rows(source, record_format, "strict", ReadReport(), ["tokens", "tags"]):
            if not record:
                continue
            words, tags = record["tokens"], record["tags"]
            if not isinstance(words, list) or not isinstance(tags, list):
                raise InputError(f"{name} line {number}: 'tokens' and 'tags' must be lists.")
            if len(words) != len(tags):
                raise InputError(f"{name} line {number}: {len(words)} tokens but {len(tags)} tags.")
            if not words:
                continue
            for tag in tags:
                check_tag(tag, number)
            examples.words.append([str(w) for w in words])
            examples.tags.append(list(tags))
            examples.lines.append(number)
    elif fmt == "conll":
        words, tags = [], []
        start = 0
        for number, line in iter_rows(source, "lines", "strict", ReadReport()):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if words:
                    examples.words.append(words)
                    examples.tags.append(tags)
                    examples.lines.append(start)
                words, tags = [], []
                continue
            if len(fields) < 2:
                raise InputError(
                    f"{name} line {number}: expected a token and a tag separated by spaces, found {line!r}."
                )
            check_tag(fields[-1], number)
            if not words:
                start = number
            words.append(fields[0])
            tags.append(fields[-1])
        if words:
            examples.words.append(words)
            examples.tags.append(tags)
            examples.lines.append(start)
    else:
        raise InputError(f"{name}: unknown token data format {fmt!r}. Valid: conll, jsonl, json, parquet.")
    if not examples.words:
        raise InputError(f"{name} holds no tagged sentences.")
    return examples


def check_labels_known(
    examples: SentenceExamples | TokenExamples, known: Sequence[str], train_source: str
) -> None:
    """Fail on the first label of a dev/test split that the training split never had."""
    known_set = set(known)
    rows = examples.labels if isinstance(examples, SentenceExamples) else examples.tags
    for number, label in zip(examples.lines or range(1, len(rows) + 1), rows):
        for item in label if isinstance(label, list) else [label]:
            if item not in known_set:
                raise InputError(
                    f"{examples.source} line {number}: label {item!r} never appears in the training data "
                    f"({train_source}). Known: {', '.join(sorted(known_set))}."
                )
