"""mfgsolve's benchmark problems, written only against mfgsolve's public API and registered by entry point.

Installed as ``mfgsolve_problems`` (``pyproject.toml`` maps this folder to that name), so that installing
mfgsolve adds no generic top-level ``problems`` package to an environment."""
