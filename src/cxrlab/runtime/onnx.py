"""ONNX models as cxrlab ships them: an ONNX file and its JSON sidecar, exported from torch, run on onnxruntime.

Shared by the filter model (:mod:`cxrlab.filter.model`, :mod:`cxrlab.filter.train`) and the baseline models
(:mod:`cxrlab.models`). A model is ``MODEL.onnx`` and ``MODEL.json`` beside it (:func:`sidecar_path`); the sidecar
records, among what its writer adds, the ``format`` and the ONNX file's SHA-256, which :func:`load_checked` checks
before onnxruntime sees a byte. Both files are written atomically (ONNX first, then the sidecar), so a reader
never finds a sidecar describing a half-written file.

Inference is deterministic (:func:`deterministic_session`): fixed onnxruntime thread counts
(``intra_op_num_threads``, ``inter_op_num_threads = 1``, sequential execution) and ``use_deterministic_compute``,
CPU provider only. Torch and onnxruntime are imported only inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cxrlab.runtime.files import atomic_write_bytes, atomic_write_text

__all__ = ["deterministic_session", "export_onnx", "load_checked", "sidecar_path"]


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON sidecar of *model_path*: the same name with ``.json`` (``filter.onnx`` -> ``filter.json``)."""
    return Path(model_path).with_suffix(".json")


def export_onnx(
    module: Any,
    example: Any,
    out: str | Path,
    sidecar: dict[str, Any],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    hint: str,
) -> dict[str, Any]:
    """Export a torch module to ONNX (opset 17, batch axis dynamic) and write it and its sidecar atomically.

    Parameters
    ----------
    module : torch.nn.Module
        What the ONNX file computes (in eval mode).
    example : torch.Tensor
        An example input (batch of 1).
    out : path
        The ``.onnx`` file.
    sidecar : dict
        The sidecar's fields; ``sha256`` of the ONNX bytes is added last.
    input_names, output_names : sequence of str
        Names of the graph's input and outputs (axis 0 of each is the dynamic batch ``n``).
    hint : str
        What to install, for the ImportError when onnx (the exporter's dependency) is missing.

    Returns
    -------
    dict
        The sidecar written.
    """
    import torch

    try:
        import onnx  # noqa: F401 - torch's exporter needs it; fail with the hint rather than deep inside torch
    except ImportError as exc:
        raise ImportError(f"{hint} ({exc})") from exc
    buf = io.BytesIO()
    names = [*input_names, *output_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module.eval(), (example,), buf, dynamo=False, input_names=list(input_names),
            output_names=list(output_names), opset_version=17, dynamic_axes={n: {0: "n"} for n in names},
        )
    data = buf.getvalue()
    side = {**sidecar, "sha256": hashlib.sha256(data).hexdigest()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    atomic_write_text(sidecar_path(out), json.dumps(side, indent=2) + "\n")
    return side


def load_checked(
    path: str | Path, *, fmt: str, what: str, refuse: Callable[[Path, str], Exception]
) -> tuple[bytes, dict[str, Any], str]:
    """Read an ONNX file and its sidecar and check the sidecar's ``format`` and SHA-256.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    fmt : str
        The sidecar ``format`` expected.
    what : str
        What the model is, for messages (``a filter model``).
    refuse : callable
        ``refuse(path, reason)`` builds the exception raised (one line naming the file).

    Returns
    -------
    (bytes, dict, str)
        The ONNX bytes, the sidecar and the SHA-256 hex digest.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise refuse(path, f"cannot read the model ({exc.strerror or type(exc).__name__})") from None
    side = sidecar_path(path)
    if not side.is_file():
        raise refuse(path, f"no sidecar {side.name} beside it ({what} is MODEL.onnx + MODEL.json)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise refuse(path, f"its sidecar {side.name} is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise refuse(path, f"its sidecar {side.name} is not a cxrlab {what.split(' ', 1)[-1]} description ({fmt})")
    digest = hashlib.sha256(data).hexdigest()
    if meta.get("sha256") != digest:
        raise refuse(path, "corrupt or replaced: its SHA-256 is not the one its sidecar records")
    return data, meta, digest


def deterministic_session(data: bytes, *, threads: int, path: Path, refuse: Callable[[Path, str], Exception],
                          hint: str) -> Any:
    """An onnxruntime ``InferenceSession`` on the CPU with fixed threads and deterministic compute.

    Raises *refuse(path, reason)* when onnxruntime rejects the bytes, ImportError (with *hint*) when onnxruntime
    is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{hint} ({exc})") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.use_deterministic_compute = True
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes for every kind of bad file
        raise refuse(path, f"not a valid ONNX model ({type(exc).__name__})") from None
