"""Where and with what a run ran: library versions, the machine, the project's commit, and the
run.json record the runner writes (benchmark.execution.store.RunStore.write_meta)."""

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from benchmark import __version__
from estimators.keras_backend import backend_facts
from estimators.tags import benchmark_tags

LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pandas", "joblib", "pillow",
             "tabulate", "matplotlib", "scikit-posthocs", "tensorflow", "keras", "jax", "torch")


def library_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _command_output(command, cwd=None):
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def project_commit():
    """{"commit", "dirty"} of the source checkout this package runs from, or None (installed)."""
    source = Path(__file__).resolve().parent.parent
    commit = _command_output(["git", "rev-parse", "HEAD"], cwd=source)
    if not commit:
        return None
    status = _command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source)
    return {"commit": commit, "dirty": bool(status)}


def machine():
    """CPU model, cores and the GPUs the NVIDIA driver lists (without importing TensorFlow)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = _command_output(["nvidia-smi", "-L"])
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus.splitlines() if gpus else [],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def _tags(create, name, params):
    """The BenchmarkTags of the run's estimator `name`; the registry's family alone for one
    that can no longer be made (a plug-in removed before a report is regenerated)."""
    from estimators.registry import estimator_family
    from estimators.tags import BenchmarkTags

    try:
        return benchmark_tags(create(name, **params))
    except (KeyError, ValueError):
        return BenchmarkTags(family=estimator_family(name))


def run_metadata(result, argv, status, backend=None):
    """The run.json record of a RunResult (or the same fields at the start of a run)."""
    from benchmark.execution.variants import create_estimator

    r = result
    run_tags = {name: _tags(create_estimator, name, r.config.params.get(name, {}))
                for name in r.config.estimators}
    return {
        "run_id": Path(r.run_dir).name,
        "status": status,
        "version": __version__,
        "project": project_commit(),
        "command": list(argv) if argv is not None else sys.argv,
        "config": asdict(r.config),
        "threads": {"workers": r.config.n_jobs, "per_cell": r.config.threads_per_cell},
        "backend": backend,
        "plan": r.plan,
        # each estimator's family, and the external data a pretrained one's network was
        # trained on, so a report regenerated where a plug-in is no longer registered still
        # tells the families apart (read from the run's own estimators: a variant's features
        # may make it pretrained)
        "families": {name: tags.family for name, tags in run_tags.items()},
        "pretrained_on": {name: tags.pretrained_on for name, tags in run_tags.items() if tags.pretrained_on},
        "pretrained_input": {name: tags.pretrained_input for name, tags in run_tags.items()
                             if tags.pretrained_input},
        # the CNNs' Keras backend: its version and what determinism it promises
        "keras_backend": backend_facts(r.config.keras_backend) if r.config.keras_backend else None,
        "datasets": r.datasets,
        "skipped_datasets": r.skipped_datasets,
        "failed_cells": len(r.failed_cells),
        # stored cells reused, and those computed again with why (e.g. "estimator code changed
        # (knn-hog: estimators/knn.py)"; see benchmark.execution.runner.recompute_reasons)
        "reused_cells": r.reused,
        "recomputed": {"count": r.recomputed, "reasons": r.recompute_reasons},
        "libraries": library_versions(),
        "machine": machine(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
