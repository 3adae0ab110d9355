"""Data sets built from the suite's environments and oracles (``python -m train.datasets``)."""

from train.datasets.build import build
from train.datasets.loading import IGNORE_LABEL, GroupSampler, Seq2SeqDataset, Seq2SeqSplit, StepwiseDataset, StepwiseSplit
from train.datasets.spec import DatasetSpec, SplitSpec, parse_spec
from train.datasets.validate import Report, validate

__all__ = [
    "IGNORE_LABEL", "DatasetSpec", "GroupSampler", "Report", "Seq2SeqDataset", "Seq2SeqSplit", "SplitSpec",
    "StepwiseDataset", "StepwiseSplit", "build", "parse_spec", "validate",
]  # fmt: skip
