import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The pages whose code blocks the tests run: a user copies them, so each must work as written.
DOCUMENTATION = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(language):
    """(page, code) of every ```language block of the README and docs/, in page order."""
    return [(page.relative_to(ROOT).as_posix(), code)
            for page in DOCUMENTATION
            for code in re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)]


@pytest.fixture
def documentation():
    """`code_blocks`, for tests that find their example in the README or in docs/."""
    return code_blocks


# The slow tests (over about 2 s each on a 2-core machine, by `--durations`): they train CNNs,
# run whole benchmarks or start processes. Mark a new one with @pytest.mark.slow; these,
# written before the marker, are marked here by file or by test name (parameters aside).
SLOW_FILES = {"test_cnn.py", "test_cnn_fast.py", "test_keras_backends.py", "test_keras_cnn.py",
              "test_scale.py", "test_worker_memory.py"}
SLOW_TESTS = {
    # scikit-learn's whole check suite: about 50 fits per estimator, CNNs included
    "tests/test_estimator_contract.py::test_sklearn_estimator_checks",
    "tests/test_estimator_contract.py::test_sklearn_estimator_checks_on_cnns",
    "tests/test_bovw.py::test_same_random_state_same_predictions",
    "tests/test_bovw.py::test_accuracy_on_digits_is_above_a_floor",
    "tests/test_api.py::test_the_api_gives_the_command_lines_scores_and_saves_the_same_run",
    "tests/test_api.py::test_a_script_runs_cells_on_all_cores_with_n_jobs_minus_one_under_the_main_guard",
    "tests/test_catalog.py::test_run_all_runs_the_available_named_datasets_and_lists_the_missing",
    "tests/test_calibration.py::test_a_damaged_probability_file_gives_n_a_and_a_problem",
    "tests/test_calibration.py::test_replaced_cells_take_their_probabilities_with_them",
    "tests/test_cli.py::test_output_piped_into_head_is_no_traceback",
    "tests/test_cli.py::test_run_end_to_end_writes_leaderboard_scores_and_metadata",
    "tests/test_code_identity.py::test_an_edited_plugin_is_recomputed_not_served_stale",
    "tests/test_groups.py::test_a_groups_file_listing_files_the_loader_skipped_says_so_with_the_reason",
    "tests/test_groups.py::test_a_folder_run_with_a_regex_groups_its_folds_and_reports_it",
    "tests/test_hostile_inputs.py::test_a_cell_with_wrong_field_types_is_reported_and_recomputed_not_a_crash",
    "tests/test_hostile_inputs.py::test_resume_refuses_configuration_options_instead_of_ignoring_them",
    "tests/test_hostile_inputs.py::test_a_terminated_or_killed_run_leaves_no_process_and_sigterm_is_handled_like_ctrl_c",
    "tests/test_hostile_inputs.py::test_ctrl_c_swallowed_by_a_library_import_stops_the_run_before_any_cell",
    "tests/test_machine_errors.py::test_a_file_size_limit_is_one_line_not_a_silent_death",
    "tests/test_per_class.py::test_a_run_records_each_estimators_family",
    "tests/test_quiet_terminal.py::test_a_quiet_run_with_a_cnn_leaves_stderr_empty",
    "tests/test_report.py::test_friedman_and_nemenyi_groups_when_ranks_differ",
    "tests/test_training_budget.py::test_undertrained_and_unconverged_fits_are_flagged_in_the_report_not_printed",
    "tests/test_training_budget.py::test_odd_training_sets_do_not_crash_and_the_check_says_what_happened",
    "tests/test_training_budget.py::test_default_budget_trains_a_small_set_with_small_batches_and_enough_steps",
    "tests/test_training_sizes.py::test_boosting_fits_at_the_smallest_sizes_and_says_when_it_cannot_early_stop",
}


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="also run the tests marked slow (CI and the README's test command do)")


def pytest_collection_modifyitems(config, items):
    """Without --full (and without a -m of one's own), leave out the tests marked slow: the
    default run is the fast subset for development, CI runs them all."""
    for item in items:
        if item.path.name in SLOW_FILES or item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    if config.getoption("--full") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_image(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


@pytest.fixture
def tiny_folder(tmp_path):
    """An image folder with two easily separated classes: dark and bright noisy squares."""
    rng = np.random.default_rng(1)
    root = tmp_path / "tiny"
    for label, level in (("dark", 40), ("bright", 200)):
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            write_image(root / label / f"{i}.png", pixels)
    return root


@pytest.fixture(autouse=True)
def no_network_and_no_user_data(monkeypatch, tmp_path_factory):
    """No test downloads anything or reads the user's data directories, config or caches."""
    from benchmark.data import catalog

    monkeypatch.setenv(catalog.ENV_OFFLINE, "1")
    monkeypatch.delenv(catalog.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(catalog, "CONFIG_FILE", tmp_path_factory.mktemp("config") / "config.ini")
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def fresh_registry(monkeypatch):
    """The estimator registry, with every real entry loaded, as a copy this test may register
    into; the real one is back after the test."""
    import estimators.registry as registry

    registry.list_estimators()  # load the real entries first, so the copy holds them all
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry
