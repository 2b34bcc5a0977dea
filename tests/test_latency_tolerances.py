"""The output check of every latency variant against fp32 eager: half its tolerance agrees, twice
its tolerance differs.

The variants are faked (``prepare`` is replaced) so that each returns the reference output with one
entry moved by an exact fraction of the documented tolerance; no network is timed or compiled.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import lightning_labs.inference.latency as latency
from lightning_labs.inference.latency import Measurement, measure_latency

# The tolerances the README promises: relative to the largest |fp32 eager output|. Written out
# here, not read from latency.TOLERANCE, so that a changed tolerance fails this test.
DOCUMENTED = {"channels_last": 1e-3, "bf16": 5e-2, "fp16": 1e-2, "compile": 1e-3, "onnxruntime": 1e-3}

# The fp32 eager output of a batch of 2: entries of very different sizes, so that a check relative
# to each entry, or to the mean, instead of to the largest |entry| gives another verdict.
REFERENCE = torch.tensor([[8.0, -0.5, 0.01, 2.0], [-4.0, 0.25, 1.0, -0.02]])
LARGEST = 8.0


def fake_variants(monkeypatch: pytest.MonkeyPatch, shift: float) -> None:
    """Eager returns REFERENCE; every other variant returns it with one small entry lowered by ``shift``."""
    moved = REFERENCE.clone()
    moved[1, 3] -= shift

    def prepare(net, variant, device, example) -> Callable[[torch.Tensor], torch.Tensor]:
        output = REFERENCE if variant == "eager" else moved
        return lambda x: output[: len(x)].clone()

    monkeypatch.setattr(latency, "prepare", prepare)


def check(variant: str) -> Measurement:
    """The one measurement of ``variant`` on a batch of 2 (one timed call: the timing is not the point)."""
    (result,) = measure_latency(torch.nn.Identity(), (4,), ["cpu"], [2], [variant], warmup=0, iterations=1)
    assert isinstance(result, Measurement)
    return result


def test_every_faster_variant_has_a_documented_tolerance() -> None:
    assert set(latency.VARIANTS) == {"eager", *DOCUMENTED}


@pytest.mark.parametrize("variant", sorted(DOCUMENTED))
@pytest.mark.parametrize(("factor", "agrees"), [(0.5, True), (2.0, False)])
def test_half_the_tolerance_agrees_and_twice_it_differs(
    monkeypatch: pytest.MonkeyPatch, variant: str, factor: float, agrees: bool
) -> None:
    fake_variants(monkeypatch, shift=factor * DOCUMENTED[variant] * LARGEST)
    result = check(variant)
    assert result.max_rel_diff == pytest.approx(factor * DOCUMENTED[variant], rel=1e-4)
    assert result.agrees is agrees


def test_eager_agrees_with_itself_only_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager is compared with a second copy of itself: its tolerance is zero, any difference is a bug."""
    fake_variants(monkeypatch, shift=0.0)
    result = check("eager")
    assert (result.max_rel_diff, result.agrees) == (0.0, True)

    # measure_latency prepares the variant it checks first, then the eager reference. The checked
    # copy differs in one entry by 2**-20 (exact in float32 next to 0.25): 2**-23 of the largest.
    checked = REFERENCE.clone()
    checked[1, 1] += 2**-20
    outputs = [checked, REFERENCE]

    def prepare(net, variant, device, example) -> Callable[[torch.Tensor], torch.Tensor]:
        output = outputs.pop(0)
        return lambda x: output[: len(x)].clone()

    monkeypatch.setattr(latency, "prepare", prepare)
    result = check("eager")
    assert (result.max_rel_diff, result.agrees) == (2**-23, False)
