"""The spec language: loading with locations, models, resolution, validation, scaling."""
