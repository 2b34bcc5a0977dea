"""The package's shape, kept by tests: commands on top and short, library below, imports pointing down.

A newcomer reads the tree as the architecture (README, "Layout"); these rules keep it true as
the code grows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import lightning_labs

PACKAGE = Path(lightning_labs.__file__).parent
ROOT = PACKAGE.parent
COMMANDS = ("train", "eval", "predict", "export", "inspect", "benchmark", "compare", "report")
COMMAND_LINES = 100


def imported_modules(path: Path) -> set[str]:
    """Every ``lightning_labs`` module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("lightning_labs.")}


def test_the_top_level_holds_the_commands_only() -> None:
    files = {path.stem for path in PACKAGE.glob("*.py")}
    assert files == {*COMMANDS, "__init__", "__main__"}
    for name in COMMANDS:
        lines = len((PACKAGE / f"{name}.py").read_text().splitlines())
        assert lines < COMMAND_LINES, f"{name}.py has {lines} lines: move its work into the library"


def test_no_library_module_imports_a_command_and_no_command_another() -> None:
    commands = {f"lightning_labs.{name}" for name in COMMANDS}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        wrong = (imported_modules(path) & commands) - {module}
        assert not wrong, f"{path.relative_to(ROOT)} imports the command(s) {sorted(wrong)}"


def test_every_command_is_an_installed_console_script() -> None:
    """``pip install -e .`` installed ``ll-<command>`` for each command (pyproject's [project.scripts])."""
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("ll-")}
    assert scripts == {f"ll-{name}": f"lightning_labs.{name}:main" for name in COMMANDS}


@pytest.mark.parametrize(
    ("package", "kept_out"),
    [("lightning_labs.models", "lightning"), ("lightning_labs.runs.report", "torch")],
)
def test_a_subpackage_loads_without_what_it_does_not_need(package: str, kept_out: str) -> None:
    """Networks are plain nn.Modules (no Lightning); finished runs are read back without torch."""
    probe = f"import sys, {package}; print('{kept_out}' in {{m.split('.')[0] for m in sys.modules}})"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


def test_importing_the_figures_leaves_matplotlibs_backend_alone() -> None:
    """A notebook that imports the callbacks keeps its own plotting backend."""
    figures = "lightning_labs.callbacks, lightning_labs.runs.plots, lightning_labs.inference.latency_report"
    probe = f"import matplotlib; matplotlib.use('svg'); import {figures}; print(matplotlib.get_backend())"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "svg"


def test_a_console_script_runs_its_command(tmp_path: Path) -> None:
    """``ll-inspect`` is ``python -m lightning_labs.inspect``: same config, same output, same log file."""
    script = Path(sys.executable).parent / "ll-inspect"
    done = subprocess.run(
        [str(script), "model=lenet5", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "61,706 parameters" in (tmp_path / "inspect.log").read_text()
