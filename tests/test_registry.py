import sys
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import estimators.registry as registry
from estimators import create_estimator, estimator_spec, list_estimators, register


@pytest.fixture
def clean_registry():
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtin_estimators_are_registered_with_family_and_description():
    names = list_estimators()
    for expected in ("logreg-pixels", "knn-hog", "knn-hog-tuned", "bagged-trees-color-moments",
                     "bagged-trees-hog-color-lbp", "logreg-hog-color", "knn-pixels"):
        assert expected in names
    spec = estimator_spec("bagged-trees-color-moments")
    assert spec.family == "classical" and "art study" in spec.description
    art = create_estimator("bagged-trees-color-moments")
    assert (art.n_estimators, art.max_depth, art.max_samples, art.max_features) == (21, 7, 0.3, 0.7)
    assert list_estimators("knn-*") == ["knn-hog", "knn-hog-tuned", "knn-imagenet", "knn-pixels"]


def test_unknown_name_suggests_the_closest(clean_registry):
    with pytest.raises(KeyError, match="did you mean knn-hog"):
        create_estimator("knn-hgo")


def test_decorator_registers_a_class_and_refuses_a_second_owner(clean_registry):
    @register("dummy-majority", description="always the most frequent class")
    class Majority(ClassifierMixin, BaseEstimator):
        pass

    assert create_estimator("dummy-majority").__class__ is Majority
    with pytest.raises(ValueError, match="already registered"):
        register("dummy-majority")(type("Other", (ClassifierMixin, BaseEstimator), {}))


def test_entry_point_plugins_join_the_registry(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "my_plugin.py").write_text(
        "from sklearn.base import BaseEstimator, ClassifierMixin\n"
        "class Plugged(ClassifierMixin, BaseEstimator):\n"
        "    '''An estimator from another package.'''\n"
    )
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nplugged = my_plugin:Plugged\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    assert "plugged" in list_estimators()
    assert estimator_spec("plugged").description == "An estimator from another package."
    sys.modules.pop("my_plugin", None)


# ---- the declaration, checked when registered (issue 31) -------------------------------------

def test_the_family_follows_the_class_and_family_may_only_confirm_it(fresh_registry):
    from estimators import KerasCNN

    class OwnCNN(KerasCNN):
        def build(self, keras, input_shape, n_classes):
            raise NotImplementedError

    register("own-cnn")(OwnCNN)  # no family=: still a CNN (it used to become "classical")
    assert estimator_spec("own-cnn").family == "cnn" and "own-cnn" in list_estimators(family="cnn")
    register("own-cnn-again", family="cnn")(OwnCNN)
    with pytest.raises(ValueError, match=r"^estimator 'own-cnn-classical': registered with "
                                         r"family='classical' but OwnCNN is of family 'cnn'; drop family=$"):
        register("own-cnn-classical", family="classical")(OwnCNN)
    with pytest.raises(ValueError, match="family must be one of classical, cnn, pretrained; got 'big'"):
        register("own-cnn-big", family="big")
    assert estimator_spec("knn-hog").family == "classical"


def test_a_feature_classifier_without_features_is_refused_when_registered(fresh_registry):
    from sklearn.dummy import DummyClassifier

    from estimators import FeatureClassifier

    class NoFeatures(FeatureClassifier):
        def __init__(self, strategy="prior"):
            self.strategy = strategy

        def _make_head(self):
            return DummyClassifier(strategy=self.strategy)

    # it used to register, then abort every run with a 37-line AttributeError traceback
    with pytest.raises(ValueError, match=r"^estimator 'no-features': NoFeatures is a FeatureClassifier "
                                         r"without a `features` parameter: add `features=\"hog\"`"):
        register("no-features")(NoFeatures)

    class OwnExtractor(NoFeatures):  # an extractor of its own needs no `features`
        def feature_extractor(self):
            from features import RawPixels

            return RawPixels()

    register("own-extractor")(OwnExtractor)
    assert "own-extractor" in list_estimators()


def test_bad_defaults_and_duplicates_are_one_line_errors(fresh_registry):
    from estimators.knn import KNNImageClassifier

    with pytest.raises(ValueError, match=r"^estimator 'knn-zero': its defaults do not hold: KNNImageClassifier: "
                                         r"The 'n_neighbors' parameter of KNNImageClassifier must be an int"):
        register("knn-zero")(lambda: KNNImageClassifier(n_neighbors=0))
    with pytest.raises(ValueError, match=r"^estimator 'knn-nope': its defaults do not hold: KNNImageClassifier: "
                                         r"unknown feature 'nope'"):
        register("knn-nope")(lambda: KNNImageClassifier(features="nope"))
    with pytest.raises(ValueError, match=r"^estimator name 'knn-hog' is already registered by "
                                         r"estimators\.knn\.knn_hog; register .* under another name$"):
        register("knn-hog")(lambda: KNNImageClassifier())


def test_renamed_names_say_their_new_name_and_keep_their_family(fresh_registry):
    from benchmark.errors import UsageError
    from benchmark.execution.selection import resolve_estimators
    from estimators.registry import RENAMED, estimator_family

    with pytest.raises(KeyError, match="estimator 'bovw-svm' was renamed to 'svm-bovw'"):
        estimator_spec("bovw-svm")
    for old, new in RENAMED.items():
        assert new in list_estimators() and old not in list_estimators()
        assert estimator_family(old) == "classical"  # an old run's report still has its family
        with pytest.raises(UsageError, match=f"^estimator '{old}' was renamed to '{new}'$"):
            resolve_estimators(old)
    with pytest.raises(UsageError, match="^estimator 'bovw-svm' was renamed to 'svm-bovw'$"):
        resolve_estimators("bovw-svm[C=1.0]")
    with pytest.raises(UsageError, match="was renamed to"):
        resolve_estimators("bovw-*")


# ---- plug-ins from anywhere (issue 31) -------------------------------------------------------

PLUGIN = '''
from sklearn.dummy import DummyClassifier

from estimators import FeatureClassifier, register


@register("plugged-prior", description="the training set's class shares, on raw pixels")
class Prior(FeatureClassifier):
    def __init__(self, features="pixels", strategy="prior"):
        self.features = features
        self.strategy = strategy

    def _make_head(self):
        return DummyClassifier(strategy=self.strategy)
'''


@pytest.fixture
def plugin_file(tmp_path, fresh_registry, monkeypatch):
    path = tmp_path / "elsewhere" / "my_estimators.py"
    path.parent.mkdir()
    path.write_text(PLUGIN)
    yield path
    for name in [m for m in sys.modules if m.startswith(registry.PLUGIN_MODULE_PREFIX)]:
        sys.modules.pop(name)


def test_a_plugin_file_from_anywhere_runs_in_worker_processes(plugin_file, tmp_path):
    from benchmark import run_benchmark

    assert registry.load_plugins([str(plugin_file)]) == ["plugged-prior"]
    module = sys.modules["benchmark_plugin_my_estimators"]
    assert module.__file__ == str(plugin_file) and estimator_spec("plugged-prior").factory is module.Prior
    assert registry.load_plugins([plugin_file]) == []  # loaded once
    results = run_benchmark(["faces"], ["plugged-prior", "knn-pixels"], folds=2, n_jobs=2)
    assert len(results.cells) == 4 and all(c.status == "ok" for c in results.cells)
    prior = [c for c in results.cells if c.estimator == "plugged-prior"]
    # faces: two balanced classes, so the class shares predict one class: macro-F1 1/3
    assert [round(c.scores["f1_macro"], 3) for c in prior] == [0.333, 0.333]
    # the plug-in's source is part of its cells' code identity, as any module's
    assert "my_estimators.py" in prior[0].code["modules"]


def test_a_plugin_module_loads_by_name(plugin_file, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    assert registry.load_plugins(["my_estimators"]) == ["plugged-prior"]
    sys.modules.pop("my_estimators", None)


@pytest.mark.parametrize("spec, message", [
    ("nowhere/missing.py", r"^plug-in file 'nowhere/missing.py' does not exist; give the path of a \.py file"),
    ("no_such_plugin_module", r"^plug-in module 'no_such_plugin_module' cannot be imported here \(no such "
                              r"module\); install its package, add its folder to PYTHONPATH, or give the file's path$"),
    ("not a name", r"^plug-in 'not a name' is neither a \.py file nor a module name"),
])
def test_a_missing_plugin_is_a_one_line_error(fresh_registry, spec, message):
    with pytest.raises(ValueError, match=message):
        registry.load_plugins([spec])


def test_a_broken_plugin_is_one_warning_and_leaves_no_half_registered_entry(plugin_file):
    plugin_file.write_text(PLUGIN + "\nregister('after-prior')(Prior)\nraise RuntimeError('the disk is on fire')\n")
    with pytest.warns(registry.PluginWarning) as caught:
        assert registry.load_plugins([str(plugin_file)]) == []
    assert len(caught) == 1
    assert str(caught[0].message) == (f"{plugin_file} could not be loaded, so its estimators are left "
                                      "out: RuntimeError: the disk is on fire")
    assert caught[0].filename == str(plugin_file)  # shown with the line that raised
    assert "plugged-prior" not in list_estimators() and "after-prior" not in list_estimators()
    assert "knn-hog" in list_estimators()


def test_a_broken_in_tree_module_is_one_warning_and_list_still_works(tmp_path):
    """In a new process (in-tree modules are imported once per process), with a broken module
    among estimators/' modules: `list` works, warns once naming the file and its error, and
    the registry holds nothing of the broken module, on the first call and the next."""
    import subprocess

    (tmp_path / "zz_broken.py").write_text(
        "from sklearn.dummy import DummyClassifier\nfrom estimators import register\n"
        "register('zz-half')(DummyClassifier)\nundefined_name + 1\n")
    script = ("import sys, estimators\n"
              "estimators.__path__.append(sys.argv[1])  # a module beside the real ones\n"
              "from estimators import list_estimators\n"
              "first = list_estimators()\n"
              "assert 'zz-half' not in first and 'knn-hog' in first and first == list_estimators()\n"
              "from benchmark.cli import main\n"
              "sys.exit(main(['list']))\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert "knn-hog" in done.stdout and "zz-half" not in done.stdout
    warned = [line for line in done.stderr.splitlines() if "PluginWarning" in line]
    assert warned == [f"{tmp_path / 'zz_broken.py'}:4: PluginWarning: {tmp_path / 'zz_broken.py'} could not "
                      "be loaded, so its estimators are left out: NameError: name 'undefined_name' is not "
                      "defined"], done.stderr


def test_a_broken_plugin_module_is_one_warning_naming_its_file(tmp_path, fresh_registry, monkeypatch):
    (tmp_path / "broken_plugin_module.py").write_text("import not_a_real_dependency_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(registry.PluginWarning) as caught:
        assert registry.load_plugins(["broken_plugin_module"]) == []
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'broken_plugin_module.py'} (plug-in module 'broken_plugin_module') could not be loaded, "
        "so its estimators are left out: ModuleNotFoundError: No module named 'not_a_real_dependency_anywhere'"]
    sys.modules.pop("broken_plugin_module", None)
