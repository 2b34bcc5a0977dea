"""What every benchmark script shares: the facts of the machine it ran on, and where results go.

from common import write_result          # in a script under benchmarks/, run as a file
write_result("data_pipeline", {"settings": ..., "results": ...})
# -> benchmarks/results/data_pipeline.json, with the machine's facts
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_labs.runtime.environment import machine_info

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json``: ``{"benchmark", "machine", **payload}``, indented."""
    clash = {"benchmark", "machine"} & set(payload)
    if clash:
        raise ValueError(f"payload keys {sorted(clash)} are reserved by write_result")
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "machine": machine_info(), **payload}
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
