"""CLI tests use the `run` fixture from tests/conftest.py."""
