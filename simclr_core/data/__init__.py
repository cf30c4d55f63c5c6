"""Dataset specs -> ImageSet (uint8 N x 3 x H x W + labels), decoded once and cached on disk.

See ARCHITECTURE.md for the spec syntax; ``load_dataset`` is the one entry point.
"""

from simclr_core.data.catalog import available_datasets, describe
from simclr_core.data.imageset import ImageSet
from simclr_core.data.load import load_dataset
from simclr_core.data.shapes import CLASSES as SHAPE_CLASSES
from simclr_core.data.spec import DatasetError, DataSpec, data_root, parse_spec, sibling_spec
from simclr_core.units import human_bytes

__all__ = [
    "SHAPE_CLASSES",
    "DataSpec",
    "DatasetError",
    "ImageSet",
    "available_datasets",
    "data_root",
    "describe",
    "human_bytes",
    "load_dataset",
    "parse_spec",
    "sibling_spec",
]
