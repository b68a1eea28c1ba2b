"""The README and docs/ as a user reads them: every Python example runs as written, the first
commands are the ones CI runs, every page is reachable and every relative link leads somewhere.

Tests of one example's behaviour (the plug-in examples ranked in a run, the experiment file,
the notebook example's output) are beside the code they exercise; they find their block with
the `documentation` fixture of conftest.py.
"""

import re
import shlex

import pytest

from conftest import DOCUMENTATION, ROOT, code_blocks

README = ROOT / "README.md"
PYTHON_BLOCKS = code_blocks("python")


def test_the_documentation_has_python_examples_to_run():
    pages = {page for page, _ in PYTHON_BLOCKS}
    assert "README.md" in pages and any(page.startswith("docs/") for page in pages)


@pytest.mark.parametrize("page,code", PYTHON_BLOCKS,
                         ids=[f"{page}-{i}" for i, (page, _) in enumerate(PYTHON_BLOCKS)])
def test_every_python_block_runs_as_written(page, code, tmp_path, monkeypatch, fresh_registry):
    # in an empty directory (a run writes results/ there) and into a copy of the registry (an
    # example may register an estimator), so one example leaves nothing behind for another
    monkeypatch.chdir(tmp_path)
    exec(compile(code, page, "exec"), {"__name__": "__documentation__"})


def test_the_first_two_commands_install_and_run_the_benchmark_then_the_full_tests():
    first, second = re.findall(r"^```bash\n(.*?)\n```", README.read_text(), re.S | re.M)[:2]
    venv = "python -m venv .venv && . .venv/bin/activate && "
    assert first == venv + "pip install . && python -m benchmark run --all"
    assert second.startswith(venv + "pip install '.[test,jax,pretrained]' && python -m pytest ")
    # CI runs exactly the README's test command (after a fresh virtual environment)
    ci = (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1]
    assert ci.replace("python3 -m", "python -m").replace("pip install -q ", "pip install ") == second
    assert "--full" in shlex.split(second)


def test_the_readme_stays_short():
    assert len(README.read_bytes()) <= 12 * 1024


def test_every_docs_page_is_linked_from_the_readme():
    readme = README.read_text()
    for page in DOCUMENTATION[1:]:
        assert f"](docs/{page.name}" in readme, f"the README does not link docs/{page.name}"
    assert "](benchmarks/README.md)" in readme and "](CHANGELOG.md)" in readme


@pytest.mark.parametrize("page", DOCUMENTATION + [ROOT / "benchmarks" / "README.md", ROOT / "CHANGELOG.md"],
                         ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_and_headings_that_exist(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            # GitHub's anchors: the heading in lower case, punctuation dropped, spaces as '-'
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
            anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in anchors, f"{page.name} links {target}: no such heading"


def test_benchmarks_readme_has_a_row_for_every_script():
    table = (ROOT / "benchmarks" / "README.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)\.py`", table, re.M))
    assert rows == {p.stem for p in (ROOT / "benchmarks").glob("*.py")}


def test_the_license_is_the_one_setup_cfg_names():
    setup = (ROOT / "setup.cfg").read_text()
    assert re.search(r"^license = MIT$", setup, re.M)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the image-benchmark authors")


def test_every_estimator_the_readme_names_exists():
    # one way only: a user's own estimator in estimators/ must not fail the suite
    from estimators import list_estimators

    table = README.read_text().split("## Estimators", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([a-z0-9-]+)`(?:, `([a-z0-9-]+)`)?", table, re.M))
    names = {name for pair in named for name in pair if name}
    assert len(names) >= 15 and names <= set(list_estimators())


@pytest.mark.slow  # three pytest processes
def test_the_default_run_leaves_the_slow_tests_to_full(tmp_path):
    """The development section's promise: `pytest` leaves out the slow tests, `--full` runs
    every test, `-m slow` only the slow ones (with this conftest.py, in a project of its own)."""
    import os
    import subprocess
    import sys

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "tests" / "test_two.py").write_text(
        "import pytest\n\ndef test_fast():\n    pass\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n")
    (tmp_path / "setup.cfg").write_text((ROOT / "setup.cfg").read_text())

    def outcome(*options):
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                               "-rA", *options], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        return sorted(re.findall(r"^PASSED tests/test_two.py::(\w+)", done.stdout, re.M)), done.returncode

    assert outcome() == (["test_fast"], 0)
    assert outcome("--full") == (["test_fast", "test_slow"], 0)
    assert outcome("-m", "slow") == (["test_slow"], 0)
