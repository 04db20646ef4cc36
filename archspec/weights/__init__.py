"""Published weights: fetched into torch's hub cache, read without running code, mapped onto
archspec's names and loaded (`archspec.build(spec, weights=...)`); their preprocessing.

The entries themselves are spec data (`archspec/spec/weights.py`).
"""

from .fetch import WeightsError, cache_dir
from .load import Chosen, Report, choose, load_into

__all__ = ["Chosen", "Report", "WeightsError", "cache_dir", "choose", "load_into"]
