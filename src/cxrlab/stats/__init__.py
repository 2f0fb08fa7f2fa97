"""Release statistics: Table 2, label distributions (Figures 3-4), NIH co-occurrence matrix."""

from cxrlab.consensus.vote import image_positives
from cxrlab.stats.cooccurrence import cooccurrence, cooccurrence_figure, render_cooccurrence
from cxrlab.stats.figures import label_figures
from cxrlab.stats.table2 import Table2, compute_table2, render_table2, table2_from_tables

__all__ = [
    "Table2",
    "compute_table2",
    "cooccurrence",
    "cooccurrence_figure",
    "image_positives",
    "label_figures",
    "render_cooccurrence",
    "render_table2",
    "table2_from_tables",
]
