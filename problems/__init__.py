"""mfgsolve's benchmark problems, written only against mfgsolve's public API and registered by entry point."""
