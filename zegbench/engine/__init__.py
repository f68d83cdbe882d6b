"""One run: resolve its config, train, evaluate, record it; the speed and memory of one target.

Nothing here knows of suites, executors or reports: ``engine/`` imports nothing from ``harness/``."""
