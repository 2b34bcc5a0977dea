"""What an Optuna search (``-m hparams_search=...``) leaves in its sweep folder, read back.

Hydra's Optuna sweeper writes ``multirun.yaml`` (naming the sweeper) when the search starts and
``optimization_results.yaml`` (the best parameters and value) when it ends. Its trials' sampled
floats have many digits (``optimizer.lr=0.0016834549246003507``): tables and summaries show them
at 4 significant digits, while configs and CSV files keep them whole.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightning_labs.runs.discovery import read_yaml

OPTUNA_RESULTS = "optimization_results.yaml"


def short_setting(value: object) -> str:
    """A float with more than 4 significant digits (an Optuna trial's ``0.0012345678``) to 4
    (``0.001235``) for tables and labels; integers and values typed short (``1e-3``) stay as they are."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    short = f"{number:.4g}"
    return short if re.search(r"[.eE]", text) and float(short) != number else text


def optuna_sweep(folder: Path) -> bool:
    """Whether ``folder`` is an Optuna sweep: it holds the study's results (written at its end), or
    its ``multirun.yaml`` (written at its start) names the Optuna sweeper."""
    if (folder / OPTUNA_RESULTS).is_file():
        return True
    content = read_yaml(folder / "multirun.yaml")
    hydra = content.get("hydra") if isinstance(content, dict) else None
    sweeper = hydra.get("sweeper") if isinstance(hydra, dict) else None
    return isinstance(sweeper, dict) and "optuna" in str(sweeper.get("_target_", "")).lower()


def best_lines(folder: Path, named: bool = False) -> list[str]:
    """``Optuna best: value 0.9812 with optimizer.lr=0.001235, model.act=relu`` from the folder's
    results (one line per Pareto solution of a multi-objective study; none before the search ends).
    ``named`` adds the folder, to tell several sweeps apart."""
    results = read_yaml(folder / OPTUNA_RESULTS)
    if not isinstance(results, dict):
        return []
    where = f" ({folder})" if named else ""
    solutions = results.get("solutions") or [
        {"params": results.get("best_params") or {}, "values": [results.get("best_value")]}
    ]
    lines = []
    for solution in solutions:
        values = ", ".join(short_setting(value) for value in solution.get("values") or [])
        params = ", ".join(f"{k}={short_setting(v)}" for k, v in (solution.get("params") or {}).items())
        lines.append(f"Optuna best{where}: value {values} with {params} ({OPTUNA_RESULTS})")
    return lines
