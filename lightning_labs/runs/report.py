"""A Markdown report of a finished run or sweep, rebuilt from its logs.

:func:`write_report` writes ``RUN_DIR/report/report.md`` and its PNGs beside it; the command is
``python -m lightning_labs.report`` (:mod:`lightning_labs.report`). A run's report: environment,
overrides and the full configuration, the model's size, the training curves, the final metrics,
every picture logged to TensorBoard (latest step of each) and the latency table of
``benchmark.json``. A sweep's report: the table and figures of :mod:`lightning_labs.runs.compare`,
then each job's metrics, prediction grid and confusion matrix. Everything comes from the files the
run left (metrics.json, environment.json, .hydra/, event files, benchmark.json): nothing is
re-run, so a report can be rebuilt at any time. Sections whose source is missing
(``logger=none``: no event files) say so.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from lightning_labs.runs import compare, plots
from lightning_labs.runs.discovery import Run, check_run_or_sweep, load_run, read_yaml
from lightning_labs.runs.events import file_name, ordered_image_tags

NO_EVENTS = "No TensorBoard event files in this run (trained with `logger=none`?): {what} not available."
NO_EVENTS_BENCHMARK = "A benchmark run writes no TensorBoard event files: {what} not available."
CAPTIONS = {
    "predictions/": "Images of the split with prediction / label above each; mistakes in red.",
    "confusion_matrix/": "Rows: true class; columns: predicted class.",
    "feature_maps/input": "The fixed validation image whose feature maps follow.",
    "feature_maps/": "Output channels of this layer for that image.",
}


def cell(value: Any) -> str:
    """A value for a Markdown table cell (pipes escaped, newlines flattened)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def count(n: float | None) -> str:
    if n is None:
        return "not logged"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n:,.0f} ({n / size:.2f}{unit})"
    return f"{n:,.0f}"


def number(value: float) -> str:
    """4 decimals, or scientific notation for tiny values (a learning rate), thousands separated."""
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def nice_date(text: str) -> str:
    return text.replace("T", " ").replace("+00:00", " UTC")


def no_events(run: Run, what: str) -> str:
    """The one line that stands for a section whose source, the event files, is missing."""
    return (NO_EVENTS_BENCHMARK if run.benchmark and not run.finished else NO_EVENTS).format(what=what)


def link(path: Path, report_dir: Path, alt: str) -> str:
    return f"![{alt}]({path.relative_to(report_dir).as_posix()})"


# ------------------------------------------------------------------------------------------- sections


def title(run: Run) -> str:
    what = " on ".join(x for x in (run.model, run.data) if x) or run.path.name
    kind = "Benchmark" if run.benchmark and not run.finished else "Run"
    return f"# {kind} report: {what}\n\n`{run.path}`, started {nice_date(run.date)}."


def environment_section(run: Run, heading: str = "## Environment") -> str:
    env = run.machine
    if not env:
        return f"{heading}\n\nNo environment.json in this run directory."
    cores = (
        f" ({env['cpu_cores']} cores, {env.get('torch_threads', '?')} torch threads)"
        if "cpu_cores" in env
        else ""
    )
    gpu = env.get("gpu") or "none"
    if env.get("gpu") and (env.get("gpu_count") or 0) > 1:
        gpu = f"{gpu} x {env['gpu_count']}"
    rows = [
        ("host", env.get("hostname")),
        ("CPU", f"{env.get('cpu', '?')}{cores}"),
        ("GPU", gpu),
        ("Python", env.get("python")),
        ("torch", env.get("torch")),
        ("torchvision", env.get("torchvision")),
        ("Lightning", env.get("lightning")),
        ("git commit", f"`{env['git_commit']}`" if env.get("git_commit") else None),
        ("seed", env.get("seed") if "seed" in env else None),
        ("command", f"`{env['command']}`" if env.get("command") else None),
        ("date", nice_date(str(env["date"])) if env.get("date") else None),
    ]
    lines = [
        "| | |",
        "|---|---|",
        *(f"| {name} | {cell(value)} |" for name, value in rows if value is not None),
    ]
    return f"{heading}\n\n" + "\n".join(lines)


def resolved_config(run: Run) -> tuple[str, bool] | None:
    """The run's ``.hydra/config.yaml`` with its interpolations resolved (``${hydra:...}`` from
    ``.hydra/hydra.yaml``), or as saved when they cannot be; and whether it was resolved."""
    text = run.config_text
    if text is None:
        return None
    hydra = (read_yaml(run.path / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}

    def hydra_value(match: re.Match[str]) -> str:
        node: Any = hydra
        for part in match.group(1).split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return match.group(0) if node is None or isinstance(node, dict | list) else str(node)

    try:
        content = yaml.safe_load(re.sub(r"\$\{hydra:([\w.]+)\}", hydra_value, text))
        return OmegaConf.to_yaml(OmegaConf.create(content), resolve=True), True
    except Exception:  # an interpolation only Hydra's process could resolve: show the file as saved
        return text, False


def configuration_section(run: Run) -> str:
    parts = ["## Configuration", ""]
    if run.overrides:
        parts += ["Command-line overrides:", "", *(f"- `{o}`" for o in run.overrides)]
    else:
        parts.append("No command-line overrides: the defaults of the entry config.")
    config = resolved_config(run)
    if config is None:
        parts += ["", "No .hydra/config.yaml in this run directory."]
    else:
        text, resolved = config
        summary = "Full configuration (.hydra/config.yaml, " + ("resolved)" if resolved else "as saved)")
        parts += [
            "",
            "<details><summary>" + summary + "</summary>",
            "",
            "```yaml",
            text.rstrip(),
            "```",
            "",
            "</details>",
        ]
    return "\n".join(parts)


def model_section(run: Run) -> str:
    events = run.events
    if events is None:
        return "## Model\n\n" + no_events(run, "parameter counts and MACs")
    params, trainable, macs = (events.last(f"model/{n}") for n in ("params", "trainable", "macs"))
    if params is None and trainable is None and macs is None:
        body = "The model's size was not logged (`callbacks.model_facts=null`)."
    else:
        rows = [("parameters", params), ("trainable", trainable), ("MACs per image", macs)]
        body = "\n".join(["| | |", "|---|---|", *(f"| {name} | {count(n)} |" for name, n in rows)])
    facts = events.text("model/facts")
    if facts:
        body += "\n\n" + facts.strip()
    return "## Model\n\n" + body


def curves_section(run: Run, report_dir: Path) -> str:
    events = run.events
    if events is None:
        return "## Curves\n\n" + no_events(run, "curves")
    wanted = ("train/loss", "val/loss", "train/acc", "val/acc")
    if not any(events.scalars(tag) for tag in wanted):
        return "## Curves\n\nNo loss or accuracy curves in the event files."
    what = " on ".join(x for x in (run.model, run.data) if x)
    figure = plots.run_curves(events, title=f"{what}: training curves" if what else "training curves")
    path = plots.save(figure, report_dir / "curves.png")
    return "## Curves\n\n" + link(path, report_dir, "loss, accuracy and learning rate")


def metrics_section(run: Run) -> str:
    if run.summary is None:
        if run.benchmark:
            return "## Final metrics\n\nNo metrics.json: a benchmark run trains nothing."
        return "## Final metrics\n\nNo metrics.json: the run crashed, was stopped or is still running."
    lines = ["| metric | value |", "|---|---:|"]
    shown = {k: v for k, v in run.metrics.items() if not (run.benchmark and k.startswith("latency/"))}
    lines += [f"| {cell(name)} | {number(value)} |" for name, value in sorted(shown.items())]
    text = "\n".join(lines)
    if len(shown) < len(run.metrics):
        text += "\n\nThe `latency/*` values are in the Latency section."
    summary = run.summary
    if summary.get("epochs") is not None:
        steps = f" ({summary['global_step']} steps)" if summary.get("global_step") is not None else ""
        seconds = f" in {summary['seconds']} s" if summary.get("seconds") is not None else ""
        text += f"\n\nTrained {summary['epochs']} epochs{steps}{seconds}."
    if summary.get("best_checkpoint"):
        text += f" Best checkpoint: `{summary['best_checkpoint']}`."
    usage = usage_line(run.metrics)
    if usage:
        text += "\n\n" + usage
    return "## Final metrics\n\n" + text


def usage_line(metrics: dict[str, float]) -> str | None:
    """Where the last epoch's training time went and how busy the hardware was, from the
    ``time/`` and ``device/`` metrics (None when neither was logged). GPU figures are absent
    from a CPU run, and the line says so rather than show an idle GPU."""
    parts = []
    data, step = metrics.get("time/data_seconds"), metrics.get("time/step_seconds")
    if data is not None and step is not None and data + step > 0:
        parts.append(
            f"{data:.2f} s waiting for data and {step:.2f} s in training steps "
            f"({data / (data + step):.0%} of the training time waiting for data)"
        )
    if "device/gpu_percent_mean" in metrics:
        parts.append(
            f"GPU utilisation {metrics['device/gpu_percent_mean']:.0f}% mean, "
            f"{metrics['device/gpu_percent_peak']:.0f}% peak"
        )
    if "device/gpu_peak_allocated_gib" in metrics:
        parts.append(f"{metrics['device/gpu_peak_allocated_gib']:.1f} GiB of GPU memory at most")
    if "device/cpu_percent_mean" in metrics:
        gpu = "" if "device/gpu_peak_allocated_gib" in metrics else "; no GPU figures: trained on the CPU"
        parts.append(
            f"CPU {metrics['device/cpu_percent_mean']:.0f}% mean, "
            f"{metrics['device/cpu_percent_peak']:.0f}% peak (this process; 100% is one core){gpu}"
        )
    return f"Last epoch: {'; '.join(parts)}." if parts else None


def caption(tag: str) -> str:
    return next((text for prefix, text in CAPTIONS.items() if tag.startswith(prefix)), "")


def write_images(run: Run, tags: Sequence[str], out_dir: Path) -> list[tuple[str, int, Path]]:
    """The latest image of each tag as ``out_dir/<tag>.png``: (tag, step, path) for each."""
    written = []
    for tag in tags:
        image = run.events.latest_image(tag) if run.events else None
        if image is None:
            continue
        path = out_dir / file_name(tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.png)
        written.append((tag, image.step, path))
    return written


def pictures_section(run: Run, report_dir: Path) -> str:
    if run.events is None:
        return "## Pictures\n\n" + no_events(run, "pictures")
    images = write_images(run, ordered_image_tags(run.events.image_tags), report_dir)
    if not images:
        return "## Pictures\n\nNo pictures were logged (the figure callbacks were switched off)."
    parts = ["## Pictures"]
    for tag, step, path in images:
        parts += [
            "",
            f"### {tag}",
            "",
            f"{caption(tag)} Step {step}.".strip(),
            "",
            link(path, report_dir, tag),
        ]
    return "\n".join(parts)


def latency_section(run: Run, report_dir: Path) -> str | None:
    """The table of ``benchmark.json`` (None when the run has none)."""
    if not run.benchmark:
        return None
    from lightning_labs.inference.latency_report import (
        STATS,  # imports torch: only for runs that have latencies
    )

    results = run.benchmark.get("results") or []
    machine = run.benchmark.get("machine") or {}
    shape = "x".join(str(s) for s in run.benchmark.get("input_shape") or [])
    about = ", ".join(
        x
        for x in (
            f"model {run.benchmark['model']}" if run.benchmark.get("model") else "",
            f"input {shape}" if shape else "",
            f"on {machine.get('hostname')}" if machine.get("hostname") else "",
            f"CPU {machine['cpu']}" if machine.get("cpu") else "",
            f"GPU {machine['gpu']}" if machine.get("gpu") else "",
        )
        if x
    )
    header = ["device", "variant", "batch", *(s.removesuffix("_ms") for s in STATS[:-1]), "img/s", "check"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 3) + "---|"]
    for result in results:
        if "reason" in result:
            cells = [
                result["device"],
                result["variant"],
                "-",
                *[""] * len(STATS),
                f"skipped: {result['reason']}",
            ]
        else:
            stats = result.get("stats") or {}
            check = "agrees" if result.get("agrees") else f"DIFFERS ({result.get('max_rel_diff', 0):.1e})"
            cells = [
                result["device"],
                result["variant"],
                result["batch_size"],
                *(f"{stats[s]:.3f}" if s in stats else "" for s in STATS[:-1]),
                f"{stats['images_per_s']:,.0f}" if "images_per_s" in stats else "",
                check,
            ]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    parts = [
        "## Latency",
        "",
        f"Milliseconds per batch; {about}." if about else "Milliseconds per batch.",
        "",
    ]
    parts += lines
    parts += ["", "Check: output compared with fp32 eager on the same device."]
    figure = run.path / "latency.png"
    if figure.is_file():
        copy = report_dir / "latency.png"
        shutil.copyfile(figure, copy)
        parts += ["", link(copy, report_dir, "latency spread")]
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------- reports


def run_report(run: Run, report_dir: Path) -> str:
    """The Markdown of one run's report; its PNGs are written into ``report_dir``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        title(run),
        environment_section(run),
        configuration_section(run),
        model_section(run),
        curves_section(run, report_dir),
        metrics_section(run),
        pictures_section(run, report_dir),
        latency_section(run, report_dir) or "## Latency\n\nNo benchmark.json in this run directory.",
    ]
    return "\n\n".join(sections) + "\n"


def job_section(comparison: compare.Comparison, run: Run, report_dir: Path) -> str:
    status = "" if run.finished else f" ({run.status}" + (f": {run.error})" if run.error else ")")
    parts = [f"### Job {run.name}: {comparison.label_text(run) or run.name}{status}", "", f"`{run.path}`"]
    if run.finished:
        columns = [c for c in comparison.columns if run.value(c) is not None]
        parts += [
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---:|" * len(columns),
            "| " + " | ".join(compare.format_value(c, run.value(c)) for c in columns) + " |",
        ]
    if run.events is None:
        parts += ["", no_events(run, "pictures")]
        return "\n".join(parts)
    tags = [
        t
        for t in ordered_image_tags(run.events.image_tags)
        if t.startswith(("predictions/", "confusion_matrix/"))
    ]
    images = write_images(run, tags, report_dir / f"job-{file_name(run.name).removesuffix('.png')}")
    if not images:
        parts += ["", "No prediction grid or confusion matrix was logged."]
    for tag, _, path in images:
        parts += ["", f"**{tag}**", "", link(path, report_dir, f"job {run.name} {tag}")]
    return "\n".join(parts)


def sweep_report(comparison: compare.Comparison, report_dir: Path, curve: str = "val/acc") -> str:
    """The comparison (table, comparison.png, curves.png), then a section per job."""
    report_dir.mkdir(parents=True, exist_ok=True)
    runs = comparison.runs
    first = next((r for r in runs if r.finished), runs[0])
    what = " on ".join(x for x in (first.model, first.data) if x)
    head = f"# Sweep report: {len(runs)} jobs" + (f" of {what}" if what else "")
    head += f"\n\n`{comparison.root}`, started {nice_date(min(run.date for run in runs))}."
    images = compare.write_figures(comparison, report_dir, curve)
    sections = [
        head,
        "## Comparison\n\n" + compare.markdown_body(comparison, images, report_dir),
        environment_section(first, heading=f"## Environment (job {first.name})"),
        f"## Jobs\n\nEach job, best {comparison.metric} first.",
        *(job_section(comparison, run, report_dir) for run in runs),
    ]
    return "\n\n".join(sections) + "\n"


def write_report(path: Path, metric: str = "test/acc", curve: str = "val/acc") -> Path:
    """``path/report/report.md`` for the run or sweep at ``path``; RunDirError when it is neither."""
    root, jobs = check_run_or_sweep(path, "report")
    report_dir = root / "report"
    if jobs == [root]:
        markdown = run_report(load_run(root), report_dir)
    else:
        markdown = sweep_report(compare.compare_runs(root, jobs, metric), report_dir, curve)
    target = report_dir / "report.md"
    target.write_text(markdown)
    return target
