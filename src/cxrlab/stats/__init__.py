"""Release statistics: Table 2 (figures and co-occurrence later)."""

from cxrlab.stats.table2 import Table2, compute_table2

__all__ = ["Table2", "compute_table2"]
