"""Tables of what a model is made of (``inspect``, and the model table at the start of training)."""

from __future__ import annotations

import rich.table
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from lightning_labs.models.facts import Layer, ModelDiff, ModelFacts


def _count(n: int) -> str:
    """``61.7 K``, ``4.1 B``: Lightning's own short form, as in its model summary."""
    return get_human_readable_count(int(n)).strip()


def _signed(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "") + _count(abs(n))


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
