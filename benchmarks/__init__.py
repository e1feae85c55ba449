"""The benchmark suite: one module per benchmark, shared helpers in ``_common``, results as JSON.

Run from the repository root, as modules of this package (``python -m benchmarks list`` names them)::

    python -m benchmarks run NAME [--quick]
    python -m benchmarks.NAME [options]

Not part of the installed library: nothing in ``st_multitask`` imports it.
"""
