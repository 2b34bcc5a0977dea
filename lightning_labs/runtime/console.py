"""What the entry points print: the config tree and a table of final metrics (rank zero only).

Everything the package prints with rich goes through :func:`print_rich`. Rich lays a table out to
the console's width, and when stdout is not a terminal (a log file, ``| tee``, CI) that width is
80 columns, so a wide table came out with its values cut ("sigmo…"). :func:`print_rich` lets
the width follow what is printed when nobody's screen limits it, and folds, never cuts, a column
that a real terminal is too narrow for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import rich.syntax
import rich.table
import rich.tree
from lightning_utilities.core.rank_zero import rank_zero_only  # what Lightning uses, without importing torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console, RenderableType
from rich.measure import Measurement

FIRST = ("data", "model", "module", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths")
MIN_WIDTH = 80  # rich's own width for a console that is not a terminal


def _fold(renderable: Any) -> None:
    """A table column too narrow for its value wraps it onto the next line instead of ending it with "…"."""
    if isinstance(renderable, rich.table.Table):
        for column in renderable.columns:
            column.overflow = "fold"


def _natural_width(console: Console, renderable: Any) -> int:
    """The width ``renderable`` takes when nothing limits it (markup strings as rich renders them)."""
    if isinstance(renderable, str):
        renderable = console.render_str(renderable)
    options = console.options.update_width(1_000_000)
    return Measurement.get(console, options, renderable).maximum


def _on_screen(console: Console) -> bool:
    """Whether a screen limits the width: a terminal, not a pipe or file with colours forced
    (``FORCE_COLOR``, set by many CI systems, makes rich treat any file as a terminal)."""
    isatty = getattr(console.file, "isatty", None)
    return console.is_terminal and isatty is not None and isatty()


def print_rich(*renderables: RenderableType, file: IO[str] | None = None) -> None:
    """``rich.print`` that never cuts a value: use it for every table and tree the package prints.

    On a screen, rich fits the output to its width; the columns of a table then fold. Anywhere
    else (a pipe, a file), the console is as wide as the widest thing printed, at least 80 columns.
    """
    console = Console(file=file)
    for renderable in renderables:
        _fold(renderable)
    if not _on_screen(console):
        widest = max((_natural_width(console, r) for r in renderables), default=0)
        console.width = max(console.width, MIN_WIDTH, widest)
    console.print(*renderables)


@rank_zero_only
def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print the composed config as a tree, one branch per group; optionally save it as text."""
    tree = rich.tree.Tree("CONFIG", style="bold", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        branch = tree.add(str(key), style="bold cyan")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    print_rich(tree)
    if save_to is not None:
        with open(save_to, "w") as file:
            print_rich(tree, file=file)


@rank_zero_only
def print_metrics(title: str, metrics: Mapping[str, float]) -> None:
    """A two-column table of metric names and values."""
    table = rich.table.Table(title=title)
    table.add_column("metric", style="cyan")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    print_rich(table)
