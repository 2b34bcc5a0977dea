"""Hydra command-line overrides as key and value, for what a run records and what a sweep compares."""

from __future__ import annotations


def parse_override(override: str) -> tuple[str, str]:
    """Key and value: ``model.pool=max`` -> (model.pool, max), ``+x=1`` -> (x, 1), ``~x`` -> (x, ~)."""
    text = override.strip()
    if text.startswith("~"):
        return text[1:].partition("=")[0], "~"
    key, _, value = text.lstrip("+").partition("=")
    return key, value
