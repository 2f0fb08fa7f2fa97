"""The on-disk image cache: epoch 2 never decodes (proved by destroying the sources after epoch 1), damaged entries
are misses, replaced files are new entries; and a torch DataLoader over a dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrlab.datasets import ImageCache, VinDrDataset, collate
from cxrlab.errors import FileError


def _epoch(ds: VinDrDataset) -> list[np.ndarray]:
    return [ds[i][0] for i in range(len(ds))]


def test_epoch_two_reads_the_cache_and_never_the_sources(phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
    root = tmp_path / "r"
    shutil.copytree(phantom_release[0], root)
    ds = VinDrDataset(root, "train", size=(40, 30), cache_dir=tmp_path / "cache")
    first = _epoch(ds)
    assert ds.decoded == len(ds) and ds.cache_hits == 0
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(ds)
    for p in (root / "train").glob("*.dicom"):  # destroy every source: any decode would now fail
        p.write_bytes(b"not a DICOM file")
    second = _epoch(ds)
    assert ds.decoded == len(ds) and ds.cache_hits == len(ds)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # A dataset built now sees new files (size and time changed): new keys, a decode, the file's own error.
    fresh = VinDrDataset(root, "train", size=(40, 30), cache_dir=tmp_path / "cache")
    with pytest.raises(FileError, match=r"\.dicom"):
        fresh[0]


def test_the_cached_image_is_the_decoded_one_and_keys_differ_by_size_and_window(phantom_release,  # noqa: ANN001
                                                                                tmp_path: Path) -> None:
    root, _ = phantom_release
    plain = VinDrDataset(root, "test", size=24)
    cached = VinDrDataset(root, "test", size=24, cache_dir=tmp_path / "c")
    other = VinDrDataset(root, "test", size=24, window="auto", cache_dir=tmp_path / "c")
    for i in range(len(plain)):
        np.testing.assert_array_equal(plain[i][0], cached[i][0])
        other[i]
    assert other.decoded == len(other)  # the same files in another window are other entries
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 2 * len(plain)
    again = VinDrDataset(root, "test", size=24, cache_dir=tmp_path / "c")
    _epoch(again)
    assert again.decoded == 0 and again.cache_hits == len(again)


def test_a_damaged_entry_is_a_miss_and_is_rewritten(phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
    root, _ = phantom_release
    ds = VinDrDataset(root, "test", size=16, cache_dir=tmp_path / "c")
    want = ds[0][0]
    entry = ImageCache(tmp_path / "c").path(ds._items[0].key)  # noqa: SLF001 - the entry of item 0
    entry.write_bytes(entry.read_bytes()[:40])  # truncated
    again = VinDrDataset(root, "test", size=16, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again[0][0], want)
    assert again.decoded == 1
    assert ImageCache(tmp_path / "c").get(ds._items[0].key, (16, 16)) is not None  # noqa: SLF001
    np.save(entry, np.zeros((3, 3), np.float32))  # the wrong shape
    assert ImageCache(tmp_path / "c").get(ds._items[0].key, (16, 16)) is None  # noqa: SLF001


@pytest.mark.slow  # imports torch
def test_a_torch_dataloader_batches_it(phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
    torch = pytest.importorskip("torch", reason="the [ml] extra (torch) is not installed")
    from torch.utils.data import DataLoader

    root, _ = phantom_release
    ds = VinDrDataset(root, "train", size=32, as_tensor=True, cache_dir=tmp_path / "c")
    loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=0, collate_fn=collate)
    seen = 0
    for images, targets in loader:
        assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
        assert images.shape[1:] == (1, 32, 32) and images.shape[0] == len(targets)
        assert all(t["label_vector"].shape == (len(ds.label_names),) for t in targets)
        seen += len(targets)
    assert seen == len(ds)
    numpy_batch, _ = collate([VinDrDataset(root, "train", size=8)[i] for i in range(2)])
    assert isinstance(numpy_batch, np.ndarray) and numpy_batch.shape == (2, 8, 8)
