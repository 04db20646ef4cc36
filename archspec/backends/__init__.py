"""Backends read the IR: torch modules, diagrams, source and deployment exports."""
