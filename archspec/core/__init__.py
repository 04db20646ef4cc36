"""The bottom layer: errors, atomic file writes, naming and formatting. Imports nothing of archspec."""
