"""Data sets built from the suite's environments and oracles (``python -m train.datasets``)."""

from train.datasets.build import build
from train.datasets.loading import StepwiseDataset, StepwiseSplit
from train.datasets.spec import DatasetSpec, SplitSpec, parse_spec
from train.datasets.validate import Report, validate

__all__ = ["DatasetSpec", "Report", "SplitSpec", "StepwiseDataset", "StepwiseSplit", "build", "parse_spec", "validate"]
