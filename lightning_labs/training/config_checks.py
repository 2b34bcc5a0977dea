"""Values of the wrong type or out of range, refused before anything is built or written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Precisions a run trains correctly with (Lightning's names; the short forms 32, 64, 16, bf16 too).
# 16-true is left out: weights in float16 make AdamW's eps (1e-8) round to 0, and the first steps
# give NaN; 16-mixed computes in float16 and keeps float32 weights.
PRECISIONS = ("32-true", "64-true", "bf16-true", "bf16-mixed", "16-mixed", "32", "64", "16", "bf16")

# (key, test, what the value must be); a key missing from the config is not checked.
RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("data.batch_size", lambda v: _integer(v) and v >= 1, "a whole number, at least 1"),
    ("data.num_workers", lambda v: _integer(v) and v >= 0, "a whole number, 0 or more"),
    ("data.val_fraction", lambda v: _number(v) and 0 < v < 1, "a fraction between 0 and 1"),
    ("optimizer.lr", lambda v: _number(v) and v > 0, "a number above 0"),
    ("trainer.max_epochs", lambda v: v is None or (_integer(v) and (v >= 1 or v == -1)), "at least 1"),
    (
        "trainer.precision",
        lambda v: str(v) in PRECISIONS,
        f"one of {', '.join(PRECISIONS[:5])}; 16-true trains float16 weights, where AdamW's steps "
        "turn to NaN: use 16-mixed",
    ),
    ("trainer.max_steps", lambda v: _integer(v) and (v >= 1 or v == -1), "at least 1, or -1 (no limit)"),
    ("model.compile", lambda v: isinstance(v, bool), "true or false"),
)


def check_values(cfg: DictConfig) -> None:
    """Raise one ValueError listing every value of ``cfg`` that breaks a rule of :data:`RULES`."""
    problems = []
    for key, test, wanted in RULES:
        value = OmegaConf.select(cfg, key, default="<unset>")
        if value != "<unset>" and not test(value):
            problems.append(f"{key}={value!r} (must be {wanted})")
    if problems:
        raise ValueError(f"Invalid setting: {'; '.join(problems)}. Fix it on the command line or in conf/.")
