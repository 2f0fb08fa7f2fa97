"""A tiny real detector run for the model-assisted reading tests: ``cxrlab train detector`` (plain torch, one
thread) for eight epochs at 64 px on a phantom release, exported to ONNX like any run. The tests check the
mechanism (settings, background predictions, provenance), not accuracy."""

from __future__ import annotations

from pathlib import Path

__all__ = ["train_tiny_detector"]


def train_tiny_detector(root: Path) -> Path:
    """Write a 24-image phantom release under *root* and train a detector run on it; return the run folder.

    Its classes are local labels of the ``vindr-cxr`` schema (those of the phantoms' findings that have a box).
    """
    import torch

    from cxrlab.datasets import write_phantom_release
    from cxrlab.models import train_detector

    release = root / "release"
    write_phantom_release(release, 24, seed=4, size_range=(64, 80), finding_prob=0.6, test_share=0.25)
    run = root / "detector"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_detector(release, run, arch="small", size=64, batch_size=8, seed=3, threads=1, epochs=8, lr=3e-3)
    finally:
        torch.set_num_threads(before)
    return run
