"""Datasets by name: the embedded ones (benchmark.data.embedded), the field's named ones
(benchmark.data.catalog) and `folder:PATH` for any image folder (benchmark.data.image_folder).
Every loader returns a `benchmark.data.dataset.Dataset`."""

from benchmark.data.dataset import FOLDER_PREFIX
from benchmark.data.embedded import EMBEDDED
from benchmark.errors import UsageError


def list_datasets():
    """[(name, description)] of the embedded datasets."""
    return [(name, description) for name, (_, description, _) in EMBEDDED.items()]


def named_datasets():
    """The catalog of the field's datasets (CIFAR, MNIST, ...), which may or may not be on disk."""
    from benchmark.data.catalog import CATALOG

    return CATALOG


def check_dataset_name(name):
    """Raise UsageError (with close matches) unless `name` is embedded, named or `folder:PATH`."""
    if name.startswith(FOLDER_PREFIX):
        from benchmark.data.image_folder import check_folder

        check_folder(name[len(FOLDER_PREFIX) :])
    elif name not in EMBEDDED and name not in named_datasets():
        known = list(EMBEDDED) + list(named_datasets()) + ["folder:PATH"]
        from estimators.registry import unknown_name_message  # (imports scikit-learn)

        raise UsageError(unknown_name_message("dataset", name, known))


def default_max_per_class(name):
    """The dataset's default sample cap per class (None: use every image)."""
    spec = named_datasets().get(name)
    return spec.max_per_class if spec else None


def load_dataset(name, *, image_size=None, seed=0, data_dir=None, folder_cache=True, location=None,
                 leave_out=None):
    """Load a dataset by name. `image_size` (pixels per side) applies to image folders;
    `data_dir` is where the named datasets are looked for first (see `benchmark.data.catalog`);
    `folder_cache` False decodes image folders without reading or writing the decoded cache;
    `location`: where a `folder:` dataset is (default: the path in its name); `leave_out`:
    a predicate of the folders a `folder:` dataset must not read, as this tool's output (see
    benchmark.data.image_folder)."""
    if name.startswith(FOLDER_PREFIX):
        from benchmark.data.image_folder import load_image_folder

        return load_image_folder(location or name[len(FOLDER_PREFIX) :], image_size=image_size,
                                 name=name, cache_dir=folder_cache, leave_out=leave_out)
    check_dataset_name(name)
    if name in named_datasets():
        from benchmark.data.catalog import load_named

        return load_named(name, data_dir=data_dir, image_size=image_size, cache_dir=folder_cache)
    loader, description, licence = EMBEDDED[name]
    dataset = loader(seed=seed)
    dataset.description, dataset.licence = description, licence
    return dataset
