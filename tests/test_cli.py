import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_schemas_copies_of_data_constants_are_the_runners():
    # benchmark.config imports only the standard library (the command line builds its parser
    # from it), so it keeps its own copies of these
    from benchmark import config
    from benchmark.data import protocols

    assert config.BY_NAME["protocol"].choices == protocols.PROTOCOLS
    assert config.MAX_SIZE == protocols.MAX_SIZE


def test_list_shows_estimators_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"knn-hog\s+classical\s+n_neighbors, weights\s+5-nearest neighbours on HOG", out)
    assert re.search(r"knn-hog-tuned\s+classical\s+-\s+k-nearest", out)  # tunes itself: no space
    assert "textures" in out and "folder:PATH" in out


@pytest.mark.slow
def test_run_end_to_end_writes_leaderboard_scores_and_metadata(tmp_path, tiny_folder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "results" / "run"
    code = main(["run", "--datasets", f"folder:{tiny_folder}", "--estimators", "knn-pixels,logreg-pixels",
                 "--folds", "3", "--seed", "0", "--out", str(out_dir), "--no-cache", "--jobs", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "knn-pixels" in printed and "Overall" in printed
    board = (out_dir / "report.md").read_text()
    rows = [line for line in board.splitlines() if re.match(r"\| +\d+ +\| +(knn|logreg)-pixels", line)]
    assert len(rows) == 4  # 2 in the overall ranking, 2 in the dataset table
    # trivially separable classes: every metric 1 on every fold, and the two are not different
    assert all(row.count("1.000 ± 0.000 [1.000, 1.000]") == 4 for row in rows[2:])
    assert "| best " in rows[2] and "not sig. (p 1)" in rows[3]
    scores = pd.read_csv(out_dir / "scores.csv")
    assert len(scores) == 6 and set(scores["status"]) == {"ok"}
    assert (scores["accuracy"] == 1.0).all()
    meta = (out_dir / "run.json").read_text()
    assert '"folds": 3' in meta and "scikit-learn" in meta and '"images": 24' in meta
    assert (out_dir.parent / "latest").resolve() == out_dir.resolve()


@pytest.mark.parametrize("args, message", [
    (["run", "--datasets", "digts"], "unknown dataset 'digts'; did you mean digits"),
    (["run", "--datasets", "digits", "--estimators", "knn-hgo"], "unknown estimator 'knn-hgo'; did you mean knn-hog"),
    (["run"], "choose datasets with --datasets"),
    (["run", "--datasets", "folder:/no/such/dir"], "does not exist"),
    (["run", "--datasets", "digits", "--folds", "1"], "--folds must be an integer >= 2; got 1"),
])
def test_usage_errors_are_one_line_with_exit_code_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unwritable_output_directory_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", "--datasets", "faces", "--out", str(blocker / "run")]) == 2
    assert "cannot write results to" in capsys.readouterr().err


def test_bad_folder_is_skipped_and_listed_while_other_datasets_run(tmp_path, tiny_folder, capsys):
    for image in sorted((tiny_folder / "dark").iterdir())[2:]:
        image.unlink()  # 2 dark images left: fewer than 3 folds
    (tiny_folder / "bright" / "zero.png").write_bytes(b"")
    out_dir = tmp_path / "run"
    code = main(["run", "--datasets", f"folder:{tiny_folder},faces", "--estimators", "knn-pixels",
                 "--folds", "3", "--out", str(out_dir), "--no-cache", "--quiet"])
    assert code == 1
    assert "class 'dark' has 2 image(s), fewer than the 3 folds; use --folds 2" in capsys.readouterr().err
    board = (out_dir / "report.md").read_text()
    assert "Dataset: faces" in board and "## Problems" in board and "zero.png" in board


def test_the_resume_hint_comes_with_failed_cells_only(tmp_path, fresh_registry, capsys):
    from estimators import create_estimator

    fresh_registry.register("knn-too-many")(lambda: create_estimator("knn-pixels").set_params(n_neighbors=10**6))
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "knn-pixels,knn-too-many", "--folds", "2",
                 "--out", str(out), "--no-cache", "--quiet", "--jobs", "1"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"2 failed cell(s), 0 skipped dataset(s): see the Problems section of {out / 'report.md'}; "
                    f"`python -m benchmark run --resume {out}` retries the failed cells")
    # only a skipped dataset (tested in test_groups) gets no hint: --resume would skip it again


def test_readme_example_estimator_appears_in_the_leaderboard(tmp_path, fresh_registry, capsys):
    text = README.read_text()
    section = text[text.index("## Add your own estimator"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(python -m benchmark run .*?)\n```", section, re.S).group(1)
    exec(compile(code, "README example", "exec"), {})
    argv = command.split()[3:] + ["--folds", "3", "--out", str(tmp_path / "run"), "--no-cache"]
    assert main(argv) == 0
    board = (tmp_path / "run" / "report.md").read_text()
    row = next(line for line in board.splitlines() if "centroid-hog" in line and "±" in line)
    assert float(re.search(r"\| (\d\.\d+) ±", row).group(1)) > 0.7


def test_hostile_names_are_escaped_in_markdown():
    from benchmark.reporting.markdown import escape_markdown

    assert escape_markdown("a|b*c_`<script>\nx") == "a\\|b\\*c\\_\\`&lt;script&gt; x"


def test_latest_never_replaces_a_users_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "results" / "latest"
    notes.parent.mkdir()
    notes.write_text("my notes")
    argv = ["run", "--datasets", "faces", "--estimators", "knn-pixels", "--folds", "2", "--no-cache", "--quiet"]
    assert main(argv + ["--out", "results/run"]) == 0
    assert notes.read_text() == "my notes" and not notes.is_symlink()


def test_label_conflicts_are_listed_in_the_report(tiny_folder, tmp_path):
    import shutil

    shutil.copy(tiny_folder / "dark" / "0.png", tiny_folder / "bright" / "copy-of-dark-0.png")
    out_dir = tmp_path / "run"
    code = main(["run", "--datasets", f"folder:{tiny_folder}", "--estimators", "knn-pixels",
                 "--folds", "3", "--out", str(out_dir), "--no-cache", "--quiet"])
    assert code == 0  # a label conflict is reported, not an error
    board = (out_dir / "report.md").read_text()
    assert "label conflict, one image under classes" in board and "bright/copy-of-dark-0.png" in board
    conflicts = json.loads((out_dir / "run.json").read_text())["datasets"][f"folder:{tiny_folder}"]["duplicates"]
    assert conflicts["label_conflict_groups"] == 1
    assert sorted(conflicts["label_conflicts"][0]["labels"]) == ["bright", "dark"]


@pytest.mark.slow
def test_output_piped_into_head_is_no_traceback(tmp_path):
    # `python -m benchmark list | head -1` printed a BrokenPipeError traceback
    import subprocess
    import sys

    proc = subprocess.Popen(f"{sys.executable} -m benchmark list | head -1", shell=True, cwd=tmp_path,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    out, err = proc.communicate(timeout=120)
    assert out.startswith("Estimators (") and "Traceback" not in err and "BrokenPipe" not in err
