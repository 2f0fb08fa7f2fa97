"""Runtime services: the batch executors (a local process pool, a Dask cluster) and atomic file writes.

:mod:`cxrlab.runtime.cluster` imports ``distributed`` (the optional ``[dask]`` extra) only when it connects.
"""

from cxrlab.runtime.cluster import DaskExecutor
from cxrlab.runtime.executor import Executor, default_workers
from cxrlab.runtime.files import atomic_copy, atomic_write_bytes, atomic_write_text

__all__ = ["DaskExecutor", "Executor", "atomic_copy", "atomic_write_bytes", "atomic_write_text", "default_workers"]
