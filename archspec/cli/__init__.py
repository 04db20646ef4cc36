"""The command line: thin wrappers over the API. `archspec --help` lists the commands."""
