"""`python -m benchmark list` (the registered estimators and the datasets) and `python -m
benchmark datasets` (every dataset: available or missing, and why)."""

from pathlib import Path

from benchmark.cli import DATA_DIR_HELP, EXIT_OK


class ListCommand:
    @staticmethod
    def add_parser(commands):
        commands.add_parser("list", help="list the registered estimators and the datasets")

    @staticmethod
    def main(args):
        return _list()


class DatasetsCommand:
    @staticmethod
    def add_parser(commands):
        datasets = commands.add_parser(
            "datasets", help="every dataset: available or missing (and why), source, classes, images, size, licence")
        datasets.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)

    @staticmethod
    def main(args):
        return _datasets(args)


def _tuned(spec):
    """The parameters `spec`'s estimator declares for --tune, or a reason it has none."""
    from estimators.tuning import search_space

    try:
        return ", ".join(search_space(spec.create())) or "-"
    except Exception as exc:  # a broken plug-in: said here, refused by `run --tune`
        return f"invalid ({type(exc).__name__})"


def _family(spec):
    """The family, with the external data a pretrained estimator's network was trained on."""
    from estimators.tags import benchmark_tags

    pretrained_on = benchmark_tags(spec.create()).pretrained_on
    return f"{spec.family} ({pretrained_on})" if pretrained_on else spec.family


def _list():
    from tabulate import tabulate

    from estimators import estimator_spec, list_estimators
    from estimators.registry import RENAMED

    from benchmark.data import list_datasets, named_datasets

    specs = [estimator_spec(n) for n in list_estimators()]
    print("Estimators (--tune searches the parameters under 'tuned')")
    print(tabulate([[s.name, _family(s), _tuned(s), s.description] for s in specs],
                   ["name", "family", "tuned", "description"]))
    from benchmark.execution.selection import unavailable_estimators

    for name, reason in unavailable_estimators([s.name for s in specs], {}).items():
        print(f"not available here: {name}: {reason}")
    # old names are refused with their new one; listed here so a script's name can be updated
    print("\nRenamed: " + ", ".join(f"{old} -> {new}" for old, new in sorted(RENAMED.items())))
    print("\nDatasets (`python -m benchmark datasets` says which are on this machine)")
    rows = list_datasets() + [(s.name, s.description) for s in named_datasets().values()]
    rows.append(("folder:PATH", "any folder laid out as PATH/<class>/<images> or PATH/{train,test}/<class>/<images>"))
    print(tabulate(rows, ["name", "description"]))
    return EXIT_OK


def _datasets(args):
    """Every dataset, available or missing (and why); the named ones are not loaded."""
    import urllib.parse

    from tabulate import tabulate

    from benchmark.data.catalog import availability, data_dirs, download_dir
    from benchmark.data import list_datasets, load_dataset, named_datasets

    dirs, origin = data_dirs(args.data_dir)
    rows, notes = [], []
    for name, _ in list_datasets():  # small enough to load for exact figures
        d = load_dataset(name)
        n, h, w, c = d.images.shape
        rows.append([name, "available", "embedded", len(d.classes), f"{n:,}", f"{h}x{w}x{c}", "all", d.licence])
    for spec in named_datasets().values():
        found = availability(spec.name, dirs, origin)
        source = found.where
        if found.status == "downloadable":
            host = urllib.parse.urlsplit(spec.downloads[0][1]).netloc
            source = f"download from {host}"
            notes.append(f"{spec.name}: not on disk; downloaded on first use "
                         f"(`run --datasets {spec.name}`), then kept in {download_dir()}")
        elif found.status == "missing":
            source = "-"
            notes.append(f"{spec.name}: {found.reason}")
        cap = f"{spec.max_per_class}/class" if spec.max_per_class else "all"
        rows.append([spec.name, found.status, source, spec.classes, spec.images, spec.image_size,
                     cap, spec.licence])
    print(tabulate(rows, ["name", "status", "source", "classes", "images", "image size",
                          "default sample", "licence"]))
    print(f"\ndata directories: {', '.join(map(str, dirs)) or 'none'} ({origin})")
    for note in notes:
        print(f"- {note}")
    return EXIT_OK
