"""The run-configuration schema (benchmark.config, issue 31): one declaration per option, one
validator, the same message from the command line, an experiment file and the API."""

import json
import math
import sys
from dataclasses import asdict

import pytest

from benchmark import run_benchmark
from benchmark.cli import main
from benchmark.config import BY_NAME, OPTIONS, RunConfig, config_from_record

BASE = ["run", "--datasets", "faces", "--estimators", "knn-pixels"]
ABSENT = object()
SIZES = "must be images per class, whole numbers >= 1 or 'max', e.g. [10, 30, 100, 'max'] or '10,30,100,max'"

# (option, command-line arguments, experiment-file line, API value, what it must be): every
# bad value the issue lists, tried as a new user would, each where it can be spelled
BAD = [
    ("seed", ["--seed", "-1"], "seed = -1", -1, "must be an integer from 0 to 4294967295"),
    ("seed", None, "seed = true", True, "must be an integer from 0 to 4294967295"),
    ("protocol", ["--protocol", "bogus"], 'protocol = "bogus"', "bogus", "must be one of 'auto', 'cv', 'holdout'"),
    ("folds", ["--folds", "2.5"], "folds = 2.5", 2.5, "must be an integer >= 2"),
    ("folds", ["--folds", "1"], "folds = 1", 1, "must be an integer >= 2"),
    ("folds", None, "folds = true", True, "must be an integer >= 2"),
    ("folds", None, None, None, "must be an integer >= 2"),
    ("max_per_class", ["--max-per-class", "-4"], "max_per_class = -4", -4, "must be an integer >= 1"),
    ("max_per_class", None, "max_per_class = false", False, "must be an integer >= 1"),
    ("repeats", ["--repeats", "0"], "repeats = 0", 0, "must be an integer >= 1"),
    ("image_size", ["--image-size", "100000"], "image_size = 100000", 100000, "must be an integer from 1 to 1024"),
    ("threads_per_cell", ["--threads-per-cell", "0"], "threads_per_cell = 0", 0, "must be an integer >= 1"),
    ("n_jobs", ["--jobs", "0"], "jobs = 0", 0, "must be a positive number of worker processes, or -1 for all cores"),
    ("n_jobs", ["--jobs", "1.5"], "jobs = 1.5", 1.5, "must be a positive number of worker processes, or -1 for all cores"),
    ("cell_timeout", ["--cell-timeout", "nan"], "cell_timeout = nan", math.nan, "must be positive: a finite number of seconds"),
    ("cell_timeout", ["--cell-timeout", "inf"], "cell_timeout = inf", math.inf, "must be positive: a finite number of seconds"),
    ("cell_timeout", ["--cell-timeout", "0"], "cell_timeout = 0", 0, "must be positive: a finite number of seconds"),
    ("cell_timeout", ["--cell-timeout", "-3"], "cell_timeout = -3", -3, "must be positive: a finite number of seconds"),
    ("train_sizes", ["--train-sizes", "0,max"], "train_sizes = 5", 5, SIZES),
    ("train_sizes", ["--train-sizes", "ten"], 'train_sizes = ["ten"]', ["ten"], SIZES),
    ("out", None, "out = 12", 12, "must be a path"),
    ("estimators", ["--estimators", ""], "estimators = []", [], "must name at least one estimator (leave it out for the default set)"),
    ("dedupe", None, 'dedupe = "yes"', "yes", "must be true or false"),
    ("tune_budget", ["--tune-budget", "many"], 'tune_budget = "many"', ABSENT, "must be a number of configurations (e.g. 8) or of seconds (e.g. '60s')"),
    ("tune_folds", ["--tune-folds", "1"], "tune_folds = 1", ABSENT, "must be an integer >= 2"),
    ("plugins", None, "plugins = 5", 5, "must be a list of plug-in files (FILE.py) or module names"),
]


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip().removeprefix("error: ")


@pytest.mark.parametrize("option, cli, toml, api, problem", BAD)
def test_a_bad_value_gets_the_same_message_from_the_command_line_an_experiment_file_and_the_api(
        option, cli, toml, api, problem, tmp_path, capsys):
    declared = BY_NAME[option]
    messages = []
    if cli is not None:
        assert main(BASE + cli) == 2
        line = _one_error_line(capsys)
        assert line.startswith(f"{declared.cli} {problem}; got "), line
        messages.append(line[len(declared.cli):])
    if toml is not None:
        path = tmp_path / "exp.toml"
        path.write_text(f'datasets = ["faces"]\n{toml}\n')
        assert main(["run", str(path)]) == 2
        line = _one_error_line(capsys)
        assert line.startswith(f"{path}: {declared.key} {problem}; got "), line
        messages.append(line[len(f"{path}: {declared.key}"):])
    if api is not ABSENT:
        with pytest.raises(ValueError) as raised:
            run_benchmark(**{"datasets": ["faces"], "estimators": ["knn-pixels"], declared.keyword: api})
        line = str(raised.value)
        assert line.startswith(f"{declared.keyword} {problem}; got ") and "\n" not in line, line
        messages.append(line[len(declared.keyword):])
    # the same words wherever it was given, the name apart (and the value as it was spelled)
    assert len({m.split("; got ")[0] for m in messages}) == 1


def test_the_values_are_shown_as_given():
    with pytest.raises(ValueError, match=r"^folds must be an integer >= 2; got 2\.5$"):
        run_benchmark(["faces"], ["knn-pixels"], folds=2.5)
    with pytest.raises(ValueError, match=r"^seed must be an integer from 0 to 4294967295; got -1$"):
        run_benchmark(["faces"], ["knn-pixels"], seed=-1)
    with pytest.raises(ValueError, match=r"^train_sizes must be .*; got 5$"):
        run_benchmark(["faces"], ["knn-pixels"], train_sizes=5)
    with pytest.raises(ValueError, match=r"^tune must be a number of configurations .*; got 'many'$"):
        run_benchmark(["faces"], ["knn-pixels"], tune="many")
    with pytest.raises(ValueError, match=r"^unknown argument 'fold'; did you mean folds or"):
        run_benchmark(["faces"], ["knn-pixels"], fold=3)


def test_exclusive_options_are_refused_together_wherever_given(tmp_path, capsys):
    assert main(BASE + ["--full", "--max-per-class", "10"]) == 2
    assert _one_error_line(capsys) == "--full and --max-per-class cannot be given together; use one of them"
    with pytest.raises(ValueError, match="^full and max_per_class cannot be given together"):
        run_benchmark(["faces"], ["knn-pixels"], full=True, max_per_class=10)


def test_the_parser_the_file_keys_and_the_api_come_from_the_schema():
    from benchmark.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    flags = {s for action in run._actions for s in action.option_strings}
    assert {o.cli for o in OPTIONS if o.cli} <= flags
    assert {"--jobs", "--plugin", "--set", "--dedupe", "--train-sizes"} <= flags
    # the defaults: one copy, whichever entry point builds the run
    from benchmark.api import build_config

    config, _ = build_config(["faces"], ["knn-pixels"])
    for option in OPTIONS:
        if option.record and option.name not in ("keras_backend", "cache_dir"):
            assert getattr(config, option.name) == option.default, option.name


def test_an_experiment_option_given_again_on_the_command_line_says_which_won(tmp_path):
    from benchmark.cli.experiment import merge_experiment

    path = tmp_path / "exp.toml"
    path.write_text('datasets = ["faces"]\nfolds = 5\nfull = true\ndedupe = false\n'
                    '[estimators.knn-pixels]\nn_neighbors = 1\n[estimators.logreg-pixels]\nC = 0.5\n')
    values, table, notes = merge_experiment(
        {"n_jobs": 1, "folds": 3, "max_per_class": 10, "dedupe": True, "estimators": ["knn-pixels"]},
        {"n_jobs": "1", "folds": "3", "max_per_class": "10", "dedupe": True, "estimators": "knn-pixels"}, path)
    assert notes == ["--folds 3 overrides folds = 5 of exp.toml",
                     "--max-per-class 10 overrides full = true of exp.toml",
                     "--dedupe overrides dedupe = false of exp.toml",
                     '--estimators knn-pixels overrides estimators = ["knn-pixels", "logreg-pixels"] of exp.toml',
                     "the [estimators.NAME] settings of exp.toml are kept for knn-pixels"]
    assert (values["folds"], values["max_per_class"], values["dedupe"], "full" in values) == (3, 10, True, False)
    assert table == {"knn-pixels": {"n_neighbors": 1}, "logreg-pixels": {"C": 0.5}}


def test_an_estimators_table_is_kept_when_the_command_line_chooses_the_estimators(tmp_path, capsys):
    # it was silently dropped: --estimators knn-pixels ran knn-pixels with its defaults
    path = tmp_path / "exp.toml"
    path.write_text('datasets = ["faces"]\nfolds = 2\n[estimators.knn-pixels]\nn_neighbors = 1\n'
                    '[estimators.logreg-pixels]\nC = 0.5\n')
    out = tmp_path / "run"
    assert main(["run", str(path), "--estimators", "knn-pixels", "--folds", "3", "--out", str(out),
                 "--no-cache", "--quiet", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "note: --folds 3 overrides folds = 2 of exp.toml" in err
    assert "note: the [estimators.NAME] settings of exp.toml are kept for knn-pixels" in err
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["estimators"], config["params"], config["folds"]) == (["knn-pixels"], {"knn-pixels": {"n_neighbors": 1}}, 3)


def test_run_json_of_earlier_versions_still_reads():
    # run.json "config" as written before the schema (no plugins): every key read back
    old = {"datasets": ["faces"], "estimators": ["knn-pixels"], "folds": 3, "seed": 0, "image_size": None,
           "cache_dir": None, "n_jobs": 1, "protocol": "auto", "repeats": 3, "max_per_class": None,
           "full": False, "data_dir": None, "unavailable": {}, "folder_cache": False, "threads_per_cell": 2,
           "cell_timeout": None, "locations": {}, "params": {"knn-pixels": {"n_neighbors": 1}},
           "experiment": None, "tune": None, "groups": None, "groups_file": None, "groups_unmatched": None,
           "dedupe": True, "train_sizes": [10, "max"], "keras_backend": "tensorflow"}
    config = config_from_record(old)
    assert {k: v for k, v in asdict(config).items() if k in old} == old and config.plugins is None
    assert (config.weights_dir, config.unavailable_estimators) == (None, {})
    assert set(asdict(RunConfig(["faces"], ["knn-pixels"]))) == set(old) | {"plugins", "weights_dir",
                                                                              "unavailable_estimators"}
    with pytest.raises(ValueError):
        config_from_record({"folds": 3})


PLUGIN = """
from estimators import create_estimator, register


@register("{name}", description="1-nearest neighbour on pixels, from a plug-in file")
def plugged():
    return create_estimator("knn-pixels").set_params(n_neighbors=1)
"""


def _plugin(tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN.format(name=name))
    return path


def test_plugins_reach_the_registry_from_the_api(tmp_path, fresh_registry):
    results = run_benchmark(["faces"], ["plugged-api"], folds=2,
                            plugins=[str(_plugin(tmp_path, "plugged-api"))])
    assert list(results.leaderboard("faces")["estimator"]) == ["plugged-api"]
    with pytest.raises(ValueError, match=r"^plug-in file '.*nowhere\.py' does not exist"):
        run_benchmark(["faces"], ["knn-pixels"], plugins=[str(tmp_path / "nowhere.py")])


def test_plugins_reach_the_registry_from_the_command_line_and_a_resume_loads_them_again(
        tmp_path, fresh_registry, capsys):
    path = _plugin(tmp_path, "plugged-cli")
    out = tmp_path / "run"
    assert main(["run", "--datasets", "faces", "--estimators", "plugged-cli", "--plugin", str(path),
                 "--folds", "2", "--out", str(out), "--no-cache", "--quiet", "--jobs", "1"]) == 0
    assert json.loads((out / "run.json").read_text())["config"]["plugins"] == [str(path)]
    # a new process would know nothing of it: forget it, and the resume loads it from run.json
    del fresh_registry._REGISTRY["plugged-cli"]
    for name in [n for n, m in sys.modules.items() if getattr(m, "__file__", None) == str(path)]:
        del sys.modules[name]
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "2 cell(s) reused" in capsys.readouterr().err
    assert "plugged-cli" in fresh_registry._REGISTRY
