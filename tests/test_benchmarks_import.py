"""Every script in benchmarks/ imports as a module without running its measurement.

The scripts run for minutes to hours, so no test runs them; importing each one still catches
what rots silently between measurements: an import of a module that moved or was renamed, a
name that no longer exists, a syntax error. A script must do no work at import (its work
belongs under `if __name__ == "__main__":`), so the import here must start no process,
print nothing and write nothing.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
# Not a measurement but the per-image feature code the scripts compare against.
LIBRARIES = {"notebook_features"}


def test_every_script_is_found():
    assert len(SCRIPTS) >= 20 and {"run_all", "fault_injection", "notebook_features"} <= {p.stem for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_a_benchmark_script_imports_without_running(script, tmp_path, monkeypatch, capsys):
    def no_process(*args, **kwargs):
        raise AssertionError(f"{script.name} starts a process at import: {args[:1]}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    # a main() that ran would parse these arguments and exit with argparse's usage error
    monkeypatch.setattr(sys, "argv", [script.name, "--not-an-option-of-any-script"])
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other, as when run
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location(f"benchmarks_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        # the sibling scripts imported by name are not left for the next test to find
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(BENCHMARKS)):
                del sys.modules[name]
    assert capsys.readouterr() == ("", ""), f"{script.name} prints at import"
    assert list(tmp_path.iterdir()) == [], f"{script.name} writes files at import"
    assert (module.__doc__ or "").strip(), f"{script.name} has no docstring saying what it measures"
    if script.stem not in LIBRARIES:
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
        assert 'if __name__ == "__main__":' in script.read_text(), f"{script.name} has no __main__ guard"
