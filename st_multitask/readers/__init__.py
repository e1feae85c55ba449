"""Read user inputs: one reader per format, the same for the data readers, the batch engines and the CLI.

The extension says the format, everywhere:

| extension                 | format    | what it holds                                              |
|---------------------------|-----------|------------------------------------------------------------|
| ``.csv`` / ``.tsv``       | csv / tsv | a header row, then one record a row                        |
| ``.jsonl``, ``.ndjson``   | jsonl     | one JSON object a line                                     |
| ``.json``                 | json      | one JSON array of objects, or of strings (each a ``text``) |
| ``.parquet``, ``.pq``     | parquet   | a Parquet table (needs ``pip install 'st-multitask[parquet]'``) |
| anything else, or ``-``   | lines     | one text a line                                            |

Each format is read two ways by this package: :func:`iter_rows` streams ``(line, record)`` and
names the line of every problem (plain text, CSV/TSV, JSON and JSON lines need no pyarrow), and
:func:`arrow_batches` gives Arrow record batches to the batch engines (pyarrow's own CSV, JSON-lines
and Parquet readers, typed as pyarrow infers them).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "texts.json"
    >>> _ = path.write_text('[{"id": 7, "text": "A cat sat."},\\n "Stocks fell."]\\n')
    >>> detect_format(path), list(iter_rows(path, "json"))
    ('json', [(1, {'id': 7, 'text': 'A cat sat.'}), (2, {'text': 'Stocks fell.'})])
"""

from __future__ import annotations

from .arrow import arrow_batches
from .lines import (
    DECODE_ERRORS,
    EXTENSIONS,
    FORMATS,
    DecodeErrors,
    Format,
    ReadReport,
    RecordFormat,
    Source,
    count_lines,
    detect_format,
    iter_lines,
    source_name,
)
from .rows import iter_rows

__all__ = [
    "DECODE_ERRORS",
    "EXTENSIONS",
    "FORMATS",
    "DecodeErrors",
    "Format",
    "ReadReport",
    "RecordFormat",
    "Source",
    "arrow_batches",
    "count_lines",
    "detect_format",
    "iter_lines",
    "iter_rows",
    "source_name",
]
