"""Runtime services: the batch executor and atomic file writes."""

from cxrlab.runtime.executor import Executor, default_workers
from cxrlab.runtime.files import atomic_copy, atomic_write_bytes, atomic_write_text

__all__ = ["Executor", "atomic_copy", "atomic_write_bytes", "atomic_write_text", "default_workers"]
