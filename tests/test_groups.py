"""Group-aware splits (issue 17, item 4): --groups REGEX | near-duplicates, --groups-file,
--groups-unmatched own-group, and --dedupe carried to the run's configuration."""

import json
import sys

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data import Dataset, DatasetError, load_dataset
from benchmark.data.groups import Grouping, assign_groups, check_grouping, read_groups_file
from benchmark.data.protocols import Split, plan_splits
from benchmark.errors import UsageError
from benchmark.execution.cell_record import cell_key
from benchmark.reporting.leaderboard import describe_sampling
from conftest import write_image

REGEX = r"^[^/]+/([a-z]+\d+)-"


@pytest.fixture
def styled_folder(tmp_path):
    """A folder of style transfers: class/<content>-<style>.png, 3 styles of each of 4 content
    images per class; the content image is the group. Dark cats, bright dogs."""
    rng = np.random.default_rng(2)
    root = tmp_path / "styled"
    for label, level in (("cat", 50), ("dog", 200)):
        for content in range(4):
            for style in ("bicycle2", "clock1", "wave3"):
                pixels = np.clip(rng.normal(level, 20, size=(8, 8, 3)), 0, 255).astype(np.uint8)
                write_image(root / label / f"{label}{content}-{style}.png", pixels)
    return root


def grouped_toy(n_groups=(12, 8, 10), seed=0, split=None):
    """A Dataset of classes a, b, c with `n_groups` groups each of 1 to 4 images; groups are
    named after their class ("a3"), and paths are class/<group>-<i>.png."""
    rng = np.random.default_rng(seed)
    labels, groups, paths = [], [], []
    for label, n in zip("abc", n_groups):
        for g in range(n):
            for i in range(int(rng.integers(1, 5))):
                labels.append(label)
                groups.append(f"{label}{g}")
                paths.append(f"{label}/{label}{g}-{i}.png")
    images = np.zeros((len(labels), 4, 4, 1), np.uint8)
    return Dataset("toy", images, np.array(labels), paths=np.array(paths), split=split), np.array(groups)


def sides(plan, groups, split):
    """(groups on the training side, groups on the test side) of one split, by dataset row."""
    return set(groups[plan.rows[split.train]]), set(groups[plan.rows[split.test]])


# --- assigning groups ---------------------------------------------------------------------

def test_a_regex_groups_the_style_transfers_of_one_content_image(styled_folder):
    dataset = load_dataset(f"folder:{styled_folder}", folder_cache=False)
    groups, facts = assign_groups(dataset, check_grouping(REGEX))
    by_path = dict(zip(dataset.paths.tolist(), groups.tolist()))
    assert by_path["cat/cat3-bicycle2.png"] == by_path["cat/cat3-clock1.png"] == "cat3"
    assert by_path["dog/dog0-wave3.png"] == "dog0"
    assert sorted(set(groups)) == [f"{c}{i}" for c in ("cat", "dog") for i in range(4)]
    assert facts == {"by": f"regex '{REGEX}'", "unmatched_own_group": 0}


def test_unmatched_files_stop_the_dataset_unless_each_is_its_own_group(styled_folder):
    for i in range(7):
        write_image(styled_folder / "cat" / f"extra{i:02}.png", np.zeros((8, 8, 3), np.uint8))
    dataset = load_dataset(f"folder:{styled_folder}", folder_cache=False)
    with pytest.raises(DatasetError) as error:
        assign_groups(dataset, check_grouping(REGEX))
    message = str(error.value)
    assert f"--groups '{REGEX}' finds no group in 7 files (cat/extra00.png, cat/extra01.png, " \
           "cat/extra02.png, cat/extra03.png, cat/extra04.png, ...) of its 31 files" in message
    assert message.endswith("fix the regex or pass --groups-unmatched own-group")
    groups, facts = assign_groups(dataset, check_grouping(REGEX, unmatched="own-group"))
    assert facts["unmatched_own_group"] == 7 and len(set(groups)) == 8 + 7  # each extra alone
    extras = groups[np.char.startswith(dataset.paths.astype(str), "cat/extra")]
    assert len(set(extras)) == 7 and not set(extras) & {f"cat{i}" for i in range(4)}


def test_a_groups_file_normalises_paths_and_lists_files_it_lacks_or_the_dataset_lacks(styled_folder, tmp_path):
    dataset = load_dataset(f"folder:{styled_folder}", folder_cache=False)
    rows = ["path,group"] + [f"./{p.replace('/', chr(92))},{p.split('/')[1][:4]}" for p in dataset.paths[:-2]]
    csv = tmp_path / "groups.csv"
    csv.write_text("\n".join(rows) + "\n\n")
    assert read_groups_file(csv)["cat/cat0-bicycle2.png"] == "cat0"
    grouping = check_grouping(groups_file=str(csv))
    with pytest.raises(DatasetError, match=r"does not list 2 files \(dog/dog3-clock1.png, dog/dog3-wave3.png\) "
                                           r"of its 24 files; add them to the file or pass --groups-unmatched own-group"):
        assign_groups(dataset, grouping)
    groups, facts = assign_groups(dataset, check_grouping(groups_file=str(csv), unmatched="own-group"))
    assert facts == {"by": f"groups file {csv}", "unmatched_own_group": 2}
    assert groups[0] == "cat0" and len(set(groups)) == 8 + 2
    csv.write_text("\n".join(rows + ["cat/ghost.png,x", "dog/dog3-clock1.png,dog3"]))
    with pytest.raises(DatasetError, match=r"names 1 file \(cat/ghost.png\) that the dataset does not have"):
        assign_groups(dataset, grouping)


@pytest.mark.slow
def test_a_groups_file_listing_files_the_loader_skipped_says_so_with_the_reason(styled_folder, tmp_path, capsys):
    (styled_folder / "cat" / "cat0-broken.png").write_bytes(b"")  # unreadable: skipped by the loader
    csv = tmp_path / "groups.csv"
    rows = [f"{p.relative_to(styled_folder).as_posix()},{p.name[:4]}" for p in sorted(styled_folder.rglob("*.png"))]
    csv.write_text("\n".join(rows) + "\n")
    for cache in (False, True, True):  # decoded, written to the cache, read back from it
        dataset = load_dataset(f"folder:{styled_folder}", folder_cache=cache)
        (reason,) = [r for p, r in dataset.skipped]
        groups, facts = assign_groups(dataset, check_grouping(groups_file=str(csv)))
        assert facts["listed_skipped"] == [f"cat/cat0-broken.png ({reason})"] and len(set(groups)) == 8
    assert reason == "empty file (0 bytes)"
    csv.write_text("\n".join(rows + ["cat/ghost.png,x"]) + "\n")
    with pytest.raises(DatasetError) as error:
        assign_groups(dataset, check_grouping(groups_file=str(csv)))
    assert "names 1 file (cat/ghost.png) that the dataset does not have" in str(error.value)
    assert str(error.value).endswith("fix or remove those rows (1 other listed file(s) the loader skipped as "
                                     "unreadable, e.g. cat/cat0-broken.png: empty file (0 bytes))")
    csv.write_text("\n".join(rows) + "\n")
    assert main(["run", "--datasets", f"folder:{styled_folder}", "--estimators", "knn-pixels", "--folds", "2",
                 "--groups-file", str(csv), "--out", str(tmp_path / "run"), "--no-cache", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert ("grouped by groups file " + str(csv) + ": 8 groups (cat 4, dog 4); 1 file(s) of the groups file "
            "skipped as unreadable: cat/cat0-broken.png (empty file (0 bytes))") in err
    assert "does not have" not in err


def test_images_without_files_cannot_be_grouped_by_name_but_by_clusters():
    digits = load_dataset("digits")
    with pytest.raises(DatasetError, match="dataset 'digits' has no image files .* --groups REGEX needs "
                                           "files; use --groups near-duplicates"):
        assign_groups(digits, Grouping(REGEX))
    clusters = np.arange(len(digits.labels)) // 3
    groups, facts = assign_groups(digits, check_grouping("near-duplicates"), clusters)
    assert facts == {"by": "near-duplicate clusters"} and len(set(groups)) == 599
    assert groups[0] == groups[2] != groups[3]
    with pytest.raises(ValueError, match="one cluster id per image"):
        assign_groups(digits, Grouping("near-duplicates"))


# --- splits -------------------------------------------------------------------------------

def test_grouped_cv_keeps_each_group_in_one_fold_and_stays_stratified():
    dataset, groups = grouped_toy()
    plan = plan_splits(dataset, protocol="cv", folds=4, seed=3, groups=groups, group_facts={"by": "test"})
    assert len(plan.splits) == 4 and len(plan.rows) == len(groups)
    tested = np.concatenate([s.test for s in plan.splits])
    assert sorted(tested.tolist()) == list(range(len(groups)))  # every image scored once
    labels = dataset.labels[plan.rows]
    share = {c: np.mean(labels == c) for c in "abc"}
    for split in plan.splits:
        train, test = sides(plan, groups, split)
        assert not train & test
        for c in "abc":  # each test fold holds about the class's share (groups are 1-4 images)
            assert abs(np.mean(labels[split.test] == c) - share[c]) < 0.12
    facts = plan.describe(dataset.labels)["grouping"]
    assert facts == {"by": "test", "groups": 30, "groups_per_class": {"a": 12, "b": 8, "c": 10}}
    again = plan_splits(dataset, protocol="cv", folds=4, seed=3, groups=groups)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(plan.splits, again.splits))
    ungrouped = plan_splits(dataset, protocol="cv", folds=4, seed=3)
    assert "grouping" not in ungrouped.describe(dataset.labels)
    assert any(sides(ungrouped, groups, s)[0] & sides(ungrouped, groups, s)[1] for s in ungrouped.splits)


def test_a_class_with_fewer_groups_than_folds_is_named_with_its_count():
    dataset, groups = grouped_toy(n_groups=(12, 3, 4))
    with pytest.raises(DatasetError) as error:
        plan_splits(dataset, protocol="cv", folds=5, groups=groups)
    assert str(error.value) == ("dataset 'toy': class 'b' has 3 group(s), class 'c' has 4 group(s), fewer "
                                "than the 5 folds; use --folds 3 or a grouping that splits its sources finer")


def test_a_group_spanning_classes_that_empties_a_training_side_is_an_error():
    # group g0 holds one image of each class: the fold that scores it with g4 leaves class a
    # out of its training side (with g3, class b); StratifiedGroupKFold's seed 0 does the first
    labels, groups = np.array(["b", "a", "a", "b"]), np.array(["g3", "g0", "g4", "g0"])
    toy = Dataset("toy", np.zeros((4, 4, 4, 1), np.uint8), labels)
    with pytest.raises(DatasetError, match=r"the groups of class\(es\) a all fall in test fold 1, leaving "
                                           "its training side without them; use fewer --folds"):
        plan_splits(toy, protocol="cv", folds=2, seed=0, groups=groups)


def test_grouped_holdout_drops_the_training_images_of_groups_in_the_test_split():
    dataset, groups = grouped_toy(n_groups=(10, 10, 10), seed=1)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(len(groups)) < 0.3, "test", "train")  # groups cut at random
    dataset.split = split
    spanning = {g for g in set(groups) if {"train", "test"} <= set(split[groups == g])}
    leaking = np.isin(groups, list(spanning)) & (split == "train")
    plan = plan_splits(dataset, protocol="holdout", repeats=1, seed=0, groups=groups, group_facts={"by": "t"})
    (only,) = plan.splits
    train, test = sides(plan, groups, only)
    assert not train & test and len(spanning) > 3
    assert len(only.test) == np.sum(split == "test")  # the test split stays whole
    assert len(only.train) == np.sum(split == "train") - leaking.sum()
    assert plan.note == (f"{leaking.sum()} training image(s) of {len(spanning)} group(s) that also have "
                         "test images dropped")
    facts = plan.describe(dataset.labels)["grouping"]
    assert facts["dropped_train_images"] == leaking.sum() and facts["dropped_groups"] == len(spanning)
    whole = np.where(np.isin(groups, [g for g in set(groups) if g.endswith("0")]), "test", "train")
    dataset.split = whole  # groups that end in 0 (a0, b0, c0) are all test: nothing leaks
    clean = plan_splits(dataset, protocol="holdout", repeats=1, seed=0, groups=groups)
    assert clean.note == "no group spans the train and test splits"
    assert len(clean.splits[0].train) == np.sum(whole == "train")


def test_holdout_that_drops_every_training_image_of_a_class_says_which():
    dataset, groups = grouped_toy(n_groups=(4, 4, 4))
    split = np.array(["train"] * len(groups))
    for g in ("c0", "c1", "c2", "c3", "a0", "b0"):
        split[np.flatnonzero(groups == g)[0]] = "test"  # one image of each c group is a test image
    dataset.split = split
    with pytest.raises(DatasetError, match="class\\(es\\) c keep no training image: every one is in a "
                                           "group that also has test images"):
        plan_splits(dataset, protocol="holdout", repeats=1, groups=groups)


def test_the_report_line_states_the_grouping_and_groups_per_class():
    dataset, groups = grouped_toy()
    plan = plan_splits(dataset, protocol="cv", folds=4, seed=0, groups=groups,
                       group_facts={"by": f"regex '{REGEX}'", "unmatched_own_group": 2})
    assert describe_sampling(plan.describe(dataset.labels)) == (
        f"4-fold cross-validation; {len(groups)} of {len(groups)} images used; grouped by regex "
        f"'{REGEX}': 30 groups (a 12, b 8, c 10), 2 unmatched file(s) each its own group")
    many = {"by": "near-duplicate clusters", "groups": 90,
            "groups_per_class": {f"k{i}": 5 + i for i in range(9)}}
    sampling = {**plan.describe(dataset.labels), "grouping": many}
    assert describe_sampling(sampling).endswith(
        "grouped by near-duplicate clusters: 90 groups (5 to 13 per class; fewest k0 5, k1 6, k2 7)")


def test_cell_keys_change_with_the_grouping_and_not_without_it():
    split = Split(np.arange(5), np.arange(5, 8), 0)
    plain = cell_key("f", "knn", {"k": 1}, split, 1, "toy")
    assert cell_key("f", "knn", {"k": 1}, split, 1, "toy", None, None) == plain
    assert cell_key("f", "knn", {"k": 1}, split, 1, "toy", None, {}) == plain
    grouped = cell_key("f", "knn", {"k": 1}, split, 1, "toy", None, {"groups": REGEX})
    deduped = cell_key("f", "knn", {"k": 1}, split, 1, "toy", None, {"dedupe": True})
    assert len({plain, grouped, deduped}) == 3
    assert plain == "99cab8905492378011ca7f17d7a14b06"  # the key of earlier versions


# --- command line, experiment files, API --------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--groups", "(unclosed"], "--groups '(unclosed' is not a valid regular expression (missing ), "
                                "unterminated subpattern at position 0)"),
    (["--groups", "[a-z]+"], "--groups '[a-z]+' has no capture group; put the part of the path"),
    (["--groups", "(a)", "--groups-file", "g.csv"], "--groups and --groups-file are two ways"),
    (["--groups-unmatched", "own-group"], "--groups-unmatched says what to do with files a grouping "
                                          "leaves out; give the grouping with --groups REGEX or --groups-file FILE"),
    (["--groups", "(a)", "--groups-unmatched", "skip"], "--groups-unmatched must be own-group; got 'skip'"),
    (["--groups", "near-duplicates", "--groups-unmatched", "own-group"], "--groups near-duplicates gives "
                                                                         "every image a group: drop it"),
    (["--groups-file", "nope.csv"], "groups file 'nope.csv' does not exist"),
    (["--groups-file", "."], "cannot read groups file '.'"),
    (["--groups-file", "bad.csv"], "groups file 'bad.csv' line 3: expected 'path,group', got 'cat/b.png'"),
    (["--groups-file", "twice.csv"], "line 2: cat/a.png is already in group 'x' (line 1)"),
    (["--datasets", "digits,faces", "--groups", REGEX],
     "--groups REGEX groups images by file name, but digits, faces have no image files (arrays); "
     "use --groups near-duplicates"),
])
def test_bad_grouping_options_are_one_line_usage_errors(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("path,group\ncat/a.png,a\ncat/b.png\n")
    (tmp_path / "twice.csv").write_text("cat/a.png,x\n./cat/a.png,y\n")
    base = [] if "--datasets" in args else ["--datasets", "faces"]
    assert main(["run", *base, "--estimators", "knn-pixels", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_folder_run_with_a_regex_groups_its_folds_and_reports_it(styled_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--datasets", f"folder:{styled_folder}", "--estimators", "knn-pixels", "--folds", "4",
                 "--groups", REGEX, "--out", str(out), "--no-cache", "--jobs", "1", "--quiet"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["groups"] == REGEX and meta["config"]["dedupe"] is False
    (summary,) = meta["datasets"].values()
    assert summary["sampling"]["grouping"] == {"by": f"regex '{REGEX}'", "unmatched_own_group": 0,
                                               "groups": 8, "groups_per_class": {"cat": 4, "dog": 4}}
    report = (out / "report.md").read_text()
    assert "grouped by regex" in report and "8 groups (cat 4, dog 4)" in report
    cells = [json.loads(p.read_text()) for p in sorted(out.glob("cells/*/*/fold-*.json"))]
    paths = np.array(sorted(p.relative_to(styled_folder).as_posix() for p in styled_folder.rglob("*.png")))
    content = [{paths[i].split("/")[1].split("-")[0] for i in c["test_index"]} for c in cells]
    assert len(cells) == 4 and all(len(c) == 2 for c in content)  # one cat and one dog source each
    assert set().union(*content) == {f"{c}{i}" for c in ("cat", "dog") for i in range(4)}  # disjoint
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--groups", REGEX, "--dedupe"]) == 2
    assert "drop --groups, --dedupe, or run the command again" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--quiet"]) == 0  # resumed with its own grouping
    assert "4 cell(s) reused" in capsys.readouterr().err


def test_a_regex_that_misses_files_skips_the_dataset_and_names_them(styled_folder, tmp_path, capsys):
    write_image(styled_folder / "dog" / "odd.png", np.zeros((8, 8, 3), np.uint8))
    code = main(["run", "--datasets", f"folder:{styled_folder}", "--estimators", "knn-pixels", "--folds", "4",
                 "--groups", REGEX, "--out", str(tmp_path / "run"), "--no-cache", "--jobs", "1", "--quiet"])
    assert code == 1
    assert (f"--groups '{REGEX}' finds no group in 1 file (dog/odd.png) of its 25 files; fix the regex or "
            "pass --groups-unmatched own-group") in capsys.readouterr().err


def test_an_experiment_file_gives_the_grouping_and_dedupe_and_near_duplicates_group_the_folds(
        tmp_path, monkeypatch, capsys):
    from benchmark.cli.experiment import read_experiment
    from benchmark.execution import preparation

    faces = load_dataset("faces")
    clusters = np.arange(len(faces.labels)) // 4  # 50 clusters of 4, each within one class
    monkeypatch.setattr(preparation, "_near_duplicate_clusters", lambda dataset, found=None: clusters)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "exp.toml").write_text(
        'datasets = ["faces"]\nestimators = ["knn-pixels"]\nfolds = 3\ngroups = "near-duplicates"\n'
        'dedupe = true\ngroups_file = "g.csv"\ngroups_unmatched = "own-group"\n')
    data = read_experiment(tmp_path / "sub" / "exp.toml")
    assert data["groups_file"] == str(tmp_path / "sub" / "g.csv") and data["dedupe"] is True
    (tmp_path / "exp.toml").write_text('datasets = ["faces"]\nestimators = ["knn-pixels"]\nfolds = 3\n'
                                       'groups = "near-duplicates"\nout = "run"\n')
    assert main(["run", str(tmp_path / "exp.toml"), "--quiet", "--no-cache", "--jobs", "1"]) == 0
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    config = meta["config"]
    # (dedupe would drop faces' two near-duplicates, so the patched clusters would not fit)
    assert (config["groups"], config["dedupe"], config["groups_file"]) == ("near-duplicates", False, None)
    grouping = meta["datasets"]["faces"]["sampling"]["grouping"]
    assert grouping == {"by": "near-duplicate clusters", "groups": 50,
                        "groups_per_class": {"face": 25, "non-face": 25}}
    folds = [json.loads(p.read_text())["test_index"] for p in (tmp_path / "run").glob("cells/*/*/fold-*.json")]
    owner = {c: k for k, rows in enumerate(folds) for c in set(clusters[rows])}
    assert len(folds) == 3 and sum(len(f) for f in folds) == 200
    assert all(owner[c] == k for k, rows in enumerate(folds) for c in clusters[rows])  # one fold each
    (tmp_path / "bad.toml").write_text('datasets = ["faces"]\ndedupe = "yes"\n')
    assert main(["run", str(tmp_path / "bad.toml")]) == 2
    assert "dedupe must be true or false; got 'yes'" in capsys.readouterr().err


def test_run_benchmark_takes_the_grouping_and_refuses_a_bad_one(styled_folder, tmp_path):
    from benchmark import run_benchmark

    csv = tmp_path / "groups.csv"
    csv.write_text("cat/cat0-bicycle2.png,one\ncat/cat0-clock1.png,one\n")
    with pytest.raises(ValueError, match="--groups '\\[' is not a valid regular expression"):
        run_benchmark([f"folder:{styled_folder}"], ["knn-pixels"], groups="[")
    with pytest.raises(ValueError, match="--groups-unmatched says what to do"):
        run_benchmark([f"folder:{styled_folder}"], ["knn-pixels"], groups_unmatched="own-group")
    results = run_benchmark([f"folder:{styled_folder}"], ["knn-pixels"], folds=3, groups_file=csv,
                            groups_unmatched="own-group", dedupe=True, cache_dir=tmp_path / "cache")
    config = results.meta["config"]
    assert config["groups_file"] == str(csv.resolve()) and config["dedupe"] is True
    grouping = results.meta["datasets"][f"folder:{styled_folder}"]["sampling"]["grouping"]
    assert grouping["groups"] == 23 and grouping["unmatched_own_group"] == 22
    with pytest.raises(UsageError):
        check_grouping(groups=5)


@pytest.mark.parametrize("nested, line", [
    # the regex package matches (?:a+)+$ without backtracking: the long name is unmatched
    (r"(?:a+)+$", "finds no group in 1 file (cat/{name}) of its 25 files; fix the regex or pass "
                  "--groups-unmatched own-group"),
    # (?:a|aa)+$ backtracks in both engines: stopped by the time limit, the file named
    (r"(?:a|aa)+$", "took over 0.2 s on one file name (cat/{name}); it backtracks catastrophically, most "
                    "often a repeat inside a repeat such as (a+)+; simplify the pattern"),
])
def test_a_catastrophically_backtracking_regex_ends_quickly_with_one_line_naming_it(
        nested, line, styled_folder, tmp_path, monkeypatch, capsys):
    import time

    from benchmark.data import groups

    monkeypatch.setattr(groups, "MATCH_SECONDS", 0.2)
    pattern = f"{REGEX}|{nested}"  # the style transfers match the first branch
    name = "a" * 60 + "b.png"  # with re, (?:a+)+$ tries 2**59 ways to split the a's
    write_image(styled_folder / "cat" / name, np.zeros((8, 8, 3), np.uint8))
    started = time.monotonic()
    code = main(["run", "--datasets", f"folder:{styled_folder}", "--estimators", "knn-pixels", "--folds", "4",
                 "--groups", pattern, "--out", str(tmp_path / "run"), "--no-cache", "--jobs", "1", "--quiet"])
    assert code == 1 and time.monotonic() - started < 30
    err = capsys.readouterr().err.strip().splitlines()
    dataset = f"folder:{styled_folder}"
    assert err[0] == f"skipping dataset {dataset}: dataset '{dataset}': --groups '{pattern}' " + line.format(name=name)
    # nothing to retry: no "--resume retries the failed cells" hint
    assert err[1:] == [f"0 failed cell(s), 1 skipped dataset(s): see the Problems section of "
                       f"{tmp_path / 'run' / 'report.md'}"]


def test_grouping_that_takes_a_while_shows_a_bar_on_a_terminal(styled_folder, monkeypatch):
    import io

    from benchmark.data import groups

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    dataset = load_dataset(f"folder:{styled_folder}", folder_cache=False)
    for after, shown in ((60.0, False), (0.0, True)):
        monkeypatch.setattr(groups, "PROGRESS_AFTER", after)
        monkeypatch.setattr("sys.stderr", Terminal())
        assign_groups(dataset, check_grouping(REGEX))
        assert (f"grouping {dataset.name}:   0%|          | 0/24 [" in sys.stderr.getvalue()) is shown
