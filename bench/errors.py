"""User-facing errors.

Every error a user can cause (bad input, missing file, wrong checkpoint) is a ``BenchError``;
the CLI prints its message on one line and exits with code 1, without a traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base class of user-facing errors; the message must say what was expected and how to fix it."""


class UnknownNameError(BenchError, KeyError):
    """A registry lookup failed (unknown method, dataset, metric, ...)."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class ConfigError(BenchError):
    """A configuration value or override is invalid."""


class DataError(BenchError):
    """A dataset file or folder is missing, corrupt or inconsistent."""


class CheckpointError(BenchError):
    """A checkpoint cannot be read or does not match the expected network."""


class WeightsNotFoundError(BenchError):
    """An external weight file (Inception, VGG19, a segmenter, an official checkpoint) is missing."""


class NonFiniteLossError(BenchError):
    """Training produced a NaN or infinite loss."""


class MetricError(BenchError):
    """A metric cannot be computed from the given inputs."""


class NonFiniteStateError(NonFiniteLossError):
    """A parameter or buffer of a network became inf/NaN during training (the losses may still be finite).

    A :class:`~bench.errors.NonFiniteLossError` (hence a ``BenchError``), so callers and the CLI treat
    both the same way: one line, exit 1.
    """
