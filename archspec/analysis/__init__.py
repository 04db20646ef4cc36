"""Analysis from the IR alone: shapes, parameters, MACs, memory, receptive field."""

from .report import LayerInfo, Report, analyze_network

__all__ = ["LayerInfo", "Report", "analyze_network"]
