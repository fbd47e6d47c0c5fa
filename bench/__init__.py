"""sisbench: a reproducible benchmark for semantic image synthesis."""

import os as _os

# OpenMP threads that spin while waiting burn the other core on a busy 2-core machine (we measured a
# SPADE training step at 2.8 CPU-s with spinning vs 0.55 CPU-s with passive waits under load). This
# must be set before torch loads its OpenMP runtime; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
