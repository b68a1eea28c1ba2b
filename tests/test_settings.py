"""Estimator settings without code (issue 15): variant names, --set, experiment files."""

import json

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.execution.selection import estimator_settings, resolve_estimators
from benchmark.execution.variants import canonical_name, create_estimator, parse_set, parse_variant

RUN = ["run", "--datasets", "faces", "--folds", "3", "--quiet", "--no-cache", "--jobs", "1"]


def test_variants_and_assignments_parse_to_python_values():
    assert parse_variant("knn-hog") == ("knn-hog", {})
    assert parse_variant("hog-x[cell=(4, 4),features='a,b',scale=True]") == (
        "hog-x", {"cell": (4, 4), "features": "a,b", "scale": True})
    assert parse_variant("knn-pixels[features=hog]") == ("knn-pixels", {"features": "hog"})
    assert parse_set("cnn-fast[epochs=3].batch_size=32") == ("cnn-fast[epochs=3]", "batch_size", 32)
    for bad in ["knn[", "knn[]", "knn[n_neighbors]", "knn[1x=2]"]:
        with pytest.raises(ValueError):
            parse_variant(bad)
    with pytest.raises(ValueError, match="ESTIMATOR.PARAM=VALUE"):
        parse_set("epochs=20")
    with pytest.raises(ValueError, match="n_neighbors is given twice, as 3 and 5; keep one"):
        parse_variant("knn-hog[n_neighbors=3,n_neighbors=5]")
    assert parse_variant("knn-hog[n_neighbors=3,n_neighbors=3]") == ("knn-hog", {"n_neighbors": 3})


def test_variant_names_are_canonical():
    assert canonical_name("logreg-pixels[C=1e-3]") == "logreg-pixels[C=0.001]"
    assert canonical_name("knn-pixels[n_neighbors=1]") == "knn-pixels[n_neighbors=1]"
    assert canonical_name("knn-pixels[features=hog]") == "knn-pixels[features='hog']"
    assert canonical_name("knn-pixels") == "knn-pixels"
    assert parse_set("logreg-pixels[C=1e-3].max_iter=9") == ("logreg-pixels[C=0.001]", "max_iter", 9)


def test_the_same_parameters_spelled_twice_run_once_with_a_note():
    notes = []
    chosen = resolve_estimators("logreg-pixels[C=1e-3],logreg-pixels[C=0.001],knn-pixels[n_neighbors=5],"
                                "knn-pixels", notes)
    # knn-pixels[n_neighbors=5] restates the default: the plain name, whose cells keep their keys, stays
    assert chosen == ["logreg-pixels[C=0.001]", "knn-pixels"]
    assert notes == [
        "logreg-pixels[C=1e-3] and logreg-pixels[C=0.001] are the same estimator, logreg-pixels[C=0.001]: "
        "it runs once",
        "knn-pixels[n_neighbors=5] has the same parameters as knn-pixels: they run once, as knn-pixels"]
    assert resolve_estimators(["knn-pixels", "knn-hog"]) == ["knn-pixels", "knn-hog"]  # not merged


def test_contradictory_settings_are_refused_and_repeated_ones_kept():
    with pytest.raises(UsageError, match=r"--set knn-hog.n_neighbors=3 and --set knn-hog.n_neighbors=5 "
                                         r"give knn-hog.n_neighbors two values; keep one"):
        estimator_settings(["knn-hog.n_neighbors=3", "knn-hog.n_neighbors=5"], ["knn-hog"])
    assert estimator_settings(["knn-hog.n_neighbors=3", "knn-hog.n_neighbors=3"], ["knn-hog"]) == {
        "knn-hog": {"n_neighbors": 3}}
    assert estimator_settings(["logreg-pixels[C=1e-3].max_iter=9"], ["logreg-pixels[C=0.001]"]) == {
        "logreg-pixels[C=0.001]": {"max_iter": 9}}


def test_a_variant_is_the_registered_estimator_with_its_parameters():
    variant = create_estimator("knn-pixels[n_neighbors=1,weights='uniform']")
    assert (variant.n_neighbors, variant.weights) == (1, "uniform")
    assert create_estimator("knn-pixels").n_neighbors != 1


@pytest.mark.parametrize("name, message", [
    ("knn-pixels[n_neighbours=1]", "no parameter 'n_neighbours'; did you mean n_neighbors"),
    ("knn-pixels[n_neighbors='three']", "The 'n_neighbors' parameter of KNNImageClassifier must be an int"),
    ("knn-pixels[n_neighbors=2.5]", "The 'n_neighbors' parameter of KNNImageClassifier must be an int"),
    # ranges, for every estimator (these have no constraint of their own in scikit-learn's head)
    ("knn-pixels[n_neighbors=0]", "must be an int in the range [1, inf) or None. Got 0 instead"),
    ("svm-hog-color[C=-1]", "The 'C' parameter of SVMImageClassifier must be a float in the range (0.0, inf]"),
    ("logreg-pixels[max_iter=-5]", "'max_iter' parameter of LogisticRegressionImageClassifier"),
    # the features: refused before any cell, as --set of the same value is (not a traceback)
    ("knn-pixels[features='nope']", "knn-pixels[features='nope']: unknown feature 'nope'; choose from"),
    ("cnn-fast[epochs=0]", "epochs"),
    ("cnn-fast[validation_fraction=1.5]", "validation_fraction"),
])
def test_bad_parameters_are_refused_before_anything_runs(tmp_path, capsys, name, message):
    out = tmp_path / "run"
    assert main([*RUN, "--estimators", name, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()  # nothing was computed or written


def test_a_variant_is_ranked_under_its_own_name_beside_the_original(tmp_path):
    out = tmp_path / "run"
    assert main([*RUN, "--estimators", "knn-pixels,knn-pixels[n_neighbors=1]", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["estimator"]) == {"knn-pixels", "knn-pixels[n_neighbors=1]"}
    cell = json.loads(next(out.glob("cells/faces/*n_neighbors*/fold-0.json")).read_text())
    assert cell["estimator"] == "knn-pixels[n_neighbors=1]"
    assert "knn-pixels[n_neighbors=1]" in (out / "report.md").read_text()


def test_set_changes_the_estimator_keeps_its_name_and_is_recorded(tmp_path):
    same = tmp_path / "set"
    assert main([*RUN, "--estimators", "knn-pixels", "--set", "knn-pixels.n_neighbors=1", "--out", str(same)]) == 0
    variant = tmp_path / "variant"
    assert main([*RUN, "--estimators", "knn-pixels[n_neighbors=1]", "--out", str(variant)]) == 0
    a, b = pd.read_csv(same / "scores.csv"), pd.read_csv(variant / "scores.csv")
    assert list(a["estimator"].unique()) == ["knn-pixels"]
    assert a["f1_macro"].tolist() == b["f1_macro"].tolist()  # the same model under two names
    meta = json.loads((same / "run.json").read_text())
    assert meta["config"]["params"] == {"knn-pixels": {"n_neighbors": 1}}
    assert r"knn-pixels with n\_neighbors=1" in (same / "report.md").read_text()
    assert main(["run", "--resume", str(same), "--quiet"]) == 0  # the settings come back from run.json
    assert pd.read_csv(same / "scores.csv")["f1_macro"].tolist() == a["f1_macro"].tolist()


@pytest.mark.parametrize("setting, message", [
    ("logreg-pixels.C=2.0", "not among this run's estimators"),
    ("knn-pixels.k=3", "has no parameter 'k'"),
    ("knn-pixels.n_neighbors", "ESTIMATOR.PARAM=VALUE"),
    ("knn-hog-tuned.random_state=3", "set it with --seed"),
    ("knn-pixels.features='nope'", "knn-pixels: unknown feature 'nope'; choose from"),
    ("knn-pixels.n_neighbors=0", "Got 0 instead"),
])
def test_bad_settings_are_one_line_usage_errors(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    estimators = "knn-pixels,knn-hog-tuned"
    assert main([*RUN, "--estimators", estimators, "--set", setting, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


EXPERIMENT = """\
datasets = ["faces"]
folds = 3
seed = 1
out = "run"

[estimators.knn-pixels]
n_neighbors = 1

[estimators.logreg-pixels]
"""


def test_an_experiment_file_runs_is_stored_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    assert main(["run", str(tmp_path / "exp.toml"), "--quiet", "--no-cache", "--jobs", "1"]) == 0
    out = tmp_path / "run"  # relative to the file
    meta = json.loads((out / "run.json").read_text())
    config = meta["config"]
    assert (config["datasets"], config["estimators"], config["folds"], config["seed"]) == (
        ["faces"], ["knn-pixels", "logreg-pixels"], 3, 1)
    assert config["params"] == {"knn-pixels": {"n_neighbors": 1}}
    assert config["experiment"] == str(tmp_path / "exp.toml")
    assert len(list(out.glob("cells/*/*/fold-*.json"))) == 6
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    assert "6 cell(s) reused" in capsys.readouterr().err
    # an option on the command line wins over the file
    assert main(["run", str(tmp_path / "exp.toml"), "--folds", "2", "--out", str(tmp_path / "two"),
                 "--quiet", "--no-cache", "--jobs", "1"]) == 0
    assert json.loads((tmp_path / "two" / "run.json").read_text())["config"]["folds"] == 2


@pytest.mark.parametrize("text, message", [
    ("datasets = ['faces']\nfold = 3\n", "unknown key 'fold'; did you mean 'folds'?"),
    ("datasets = ['faces']\nfolds = 'three'\n", "folds must be an integer"),
    ("datasets = ['faces'\n", "not valid TOML"),
    ("datasets = ['faces']\n[estimators.knn-pixels]\nn_neighbors = 'x'\n", "'n_neighbors' parameter of KNNImageClassifier must be an int"),
    ("datasets = ['faces']\n[estimators.knn-pixels]\nradius = 2\n", "no parameter 'radius'"),
])
def test_a_bad_experiment_file_is_a_one_line_error(tmp_path, capsys, text, message):
    (tmp_path / "exp.toml").write_text(text)
    assert main(["run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_missing_experiment_file_and_resume_with_one_are_usage_errors(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.toml"), "--resume", str(tmp_path)]) == 2
    assert "drop the experiment file" in capsys.readouterr().err


def test_the_documented_experiment_file_is_valid(tmp_path, documentation):
    from benchmark.cli.experiment import read_experiment
    from benchmark.execution.selection import estimator_settings

    ((page, block),) = documentation("toml")  # docs/tuning-and-settings.md's experiment file
    (tmp_path / "experiment.toml").write_text(block)
    data = read_experiment(tmp_path / "experiment.toml")
    assert data["datasets"] == ["digits", "faces"] and data["out"] == str(tmp_path / "results" / "knn-study")
    assert estimator_settings(None, list(data["estimators"]), data["estimators"]) == {
        "knn-hog": {"n_neighbors": 3}, "cnn-fast": {"epochs": 20}}
