"""Where images come from: the Dataset type (dataset), the embedded datasets (embedded, shapes),
the field's named datasets (catalog, read from archives), image folders (image_folder), exact
duplicates (duplicates) and the splits every estimator shares (protocols)."""

from benchmark.data.dataset import FOLDER_PREFIX, Dataset, DatasetError
from benchmark.data.loading import (check_dataset_name, default_max_per_class, list_datasets, load_dataset,
                                    named_datasets)

__all__ = ["FOLDER_PREFIX", "Dataset", "DatasetError", "check_dataset_name", "default_max_per_class",
           "list_datasets", "load_dataset", "named_datasets"]
