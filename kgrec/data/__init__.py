"""Reading, validating and splitting a user's data: interactions, catalog, users, triples, links."""

from kgrec.data.context import ContextFeatures, ContextField
from kgrec.data.dataset import Dataset, read_catalog, read_dataset, read_interactions
from kgrec.data.ids import IdMap
from kgrec.data.public import (
    PUBLIC_DATASETS,
    dataset_missing,
    download_dataset,
    load_dataset,
    resolve_data_dir,
    verify_dataset,
)
from kgrec.data.readers import read_entity_labels
from kgrec.data.split import Split, split_interactions

__all__ = [
    "ContextFeatures",
    "ContextField",
    "Dataset",
    "IdMap",
    "PUBLIC_DATASETS",
    "Split",
    "dataset_missing",
    "download_dataset",
    "load_dataset",
    "read_catalog",
    "read_dataset",
    "read_entity_labels",
    "read_interactions",
    "resolve_data_dir",
    "split_interactions",
    "verify_dataset",
]
