"""Size limits shared by the API and the command line."""

# Networks with more parameters are refused before any weight exists (`max_params=`, `--max-params`).
DEFAULT_MAX_PARAMS = 2e9
# How the command line's help writes it.
DEFAULT_MAX_PARAMS_TEXT = f"{DEFAULT_MAX_PARAMS:.0e}".replace("e+0", "e").replace("e+", "e")
