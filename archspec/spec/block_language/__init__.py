"""The YAML block language: families defined in a spec's `blocks:` section (parse, emit, family)."""
