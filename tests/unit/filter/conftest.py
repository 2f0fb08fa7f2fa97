"""A tiny filter model for the filter tests, trained once per session by the real CLI in a subprocess.

Training runs in its own process (``cxrlab filter train --phantoms``), so the test process never starts torch's
thread pool before the executor forks its workers. Tests that need it skip with a reason when the ``[ml]`` extra
is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HAVE_TRAIN = all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx", "onnxruntime"))
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_train = pytest.mark.skipif(not HAVE_TRAIN, reason="needs the [ml] extra (torch, onnx, onnxruntime)")
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="needs onnxruntime (the [ml] extra)")


def train_cli(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cxrlab filter train`` in a subprocess on one torch thread and one worker."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cxrlab.cli.main", "filter", "train", "-o", str(out), "--threads", "1", "-j", "1",
         *args],
        capture_output=True, text=True, env=env, timeout=600,
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained on 36 phantoms for 2 epochs (seconds): good for mechanics, not for accuracy."""
    if not HAVE_TRAIN:
        pytest.skip("needs the [ml] extra (torch, onnx, onnxruntime)")
    out = tmp_path_factory.mktemp("model") / "filter.onnx"
    done = train_cli(out, "--phantoms", "36", "--epochs", "2", "--width", "tiny", "--seed", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


HAVE_ONNX = HAVE_ORT and importlib.util.find_spec("onnx") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs onnx and onnxruntime (the [ml] extra)")


def constant_model(path: Path, view: tuple[float, float, float, float], pediatric: float) -> Path:
    """Write a filter model (ONNX + sidecar) that gives every image the same probabilities.

    Built with ``onnx.helper`` (no torch): the outputs are the constants plus 0 x the input's mean, so they have
    the batch's shape. Stage tests use it to know every decision in advance, whatever a trained network does.
    """
    import hashlib
    import json

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from cxrlab.filter.classes import AGE_CLASSES, VIEW_CLASSES
    from cxrlab.filter.model import MODEL_FORMAT, sidecar_path
    from cxrlab.filter.render import CHANNELS, INPUT_SIZE

    consts = [
        numpy_helper.from_array(np.asarray([view], dtype=np.float32), "view_c"),
        numpy_helper.from_array(np.asarray([pediatric], dtype=np.float32), "ped_c"),
        numpy_helper.from_array(np.asarray([0.0], dtype=np.float32), "zero"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nil"]),
        helper.make_node("Add", ["nil", "ped_c"], ["pediatric"]),
        helper.make_node("Unsqueeze", ["nil", "axis1"], ["nil2"]),
        helper.make_node("Add", ["nil2", "view_c"], ["view"]),
    ]
    graph = helper.make_graph(
        nodes, "constant",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 2, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("view", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("pediatric", TensorProto.FLOAT, ["n"])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    path.write_bytes(data)
    side = {"format": MODEL_FORMAT, "classes": list(VIEW_CLASSES), "age_classes": list(AGE_CLASSES),
            "input": {"size": INPUT_SIZE, "channels": list(CHANNELS)}, "sha256": hashlib.sha256(data).hexdigest()}
    sidecar_path(path).write_text(json.dumps(side))
    return path
