"""Filter: set outliers aside (header rules now; a light CNN later)."""

from cxrlab.filter.rules import FilterRules, check_header
from cxrlab.filter.stage import run_filter

__all__ = ["FilterRules", "check_header", "run_filter"]
