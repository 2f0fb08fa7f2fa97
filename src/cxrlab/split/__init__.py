"""Split a labeled set into train and test: random, multilabel-stratified, or by patient."""

from cxrlab.split.splitters import SPLIT_METHODS, count_test_images, split_images, split_summary, write_split_lists
from cxrlab.split.stage import run_split

__all__ = ["SPLIT_METHODS", "run_split", "split_images", "split_summary", "count_test_images", "write_split_lists"]
