"""What the entry points print: the config tree and a table of final metrics (rank zero only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import rich
import rich.syntax
import rich.table
import rich.tree
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lightning_labs.models.facts import Layer, ModelDiff, ModelFacts

FIRST = ("data", "model", "module", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths")


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
    rich.print(tree)
    if save_to is not None:
        with open(save_to, "w") as file:
            rich.print(tree, file=file)


@rank_zero_only
def print_metrics(title: str, metrics: Mapping[str, float]) -> None:
    """A two-column table of metric names and values."""
    table = rich.table.Table(title=title)
    table.add_column("metric", style="cyan")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    rich.print(table)


def _count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def _signed(n: int) -> str:
    return ("+" if n > 0 else "") + _count(n)


def facts_summary(facts: ModelFacts) -> str:
    """One line: parameters (trainable/frozen) and MACs for one input."""
    shape = "x".join(map(str, facts.input_shape))
    return (
        f"{facts.params:,} parameters ({facts.trainable:,} trainable, {facts.frozen:,} frozen), "
        f"{_count(facts.macs)} MACs per {shape} input"
    )


def facts_table(facts: ModelFacts, title: str = "Model") -> rich.table.Table:
    """The layer-by-layer table of a model, with its totals as the caption."""
    table = rich.table.Table(title=title, caption=facts_summary(facts))
    for column, justify in (
        ("layer", "left"),
        ("type", "left"),
        ("output", "right"),
        ("params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(column, justify=justify)
    for layer in facts.layers:
        shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else "?"
        table.add_row(layer.name, layer.kind, shape, _count(layer.params), _count(layer.macs))
    return table


def diff_table(diff: ModelDiff, before: str, after: str) -> rich.table.Table:
    """What changed from model ``before`` to model ``after``, layer by layer and in total."""
    table = rich.table.Table(title=f"{before} -> {after}")
    for column in ("", "layer", "type", "output", "params", "MACs"):
        table.add_column(column)

    def row(mark: str, layer: Layer, style: str) -> None:
        shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else "?"
        table.add_row(
            mark, layer.name, layer.kind, shape, _count(layer.params), _count(layer.macs), style=style
        )

    for layer in diff.removed:
        row("-", layer, "red")
    for layer in diff.added:
        row("+", layer, "green")
    for old, new in diff.changed:
        row("~", old, "yellow")
        row("", new, "yellow")
    b, a = diff.before, diff.after
    table.caption = (
        f"params {_count(b.params)} -> {_count(a.params)} ({_signed(a.params - b.params)}), "
        f"MACs {_count(b.macs)} -> {_count(a.macs)} ({_signed(a.macs - b.macs)})"
    )
    return table
