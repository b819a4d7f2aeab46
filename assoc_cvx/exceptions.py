"""Warnings and errors raised by assoc_cvx."""

__all__ = [
    "AssocCvxError",
    "CapacityWarning",
    "CheckpointWarning",
    "InsufficientMemoryError",
    "SolverError",
    "SolverWarning",
    "StorageWarning",
]


class AssocCvxError(Exception):
    """Base class of the errors raised by assoc_cvx."""


class SolverError(AssocCvxError, RuntimeError):
    """A solver is unusable: not installed, or none could solve a program.

    A storage verdict that no solver could reach is not an error: it is
    returned as undecided, with a :class:`SolverWarning`.
    """


class InsufficientMemoryError(AssocCvxError, MemoryError):
    """Deciding storage would need more memory than is allowed or available.

    Raised before the large arrays are built; the message gives the estimate.
    """


class SolverWarning(UserWarning):
    """A solver returned an inaccurate or failed answer that was discarded.

    The verdict then came from another solver, or is undecided.
    """


class StorageWarning(UserWarning):
    """The associations could not all be stored (or it could not be decided)."""


class CapacityWarning(UserWarning):
    """Some instance's critical p is not known (for instance, p_max was reached)."""


class CheckpointWarning(UserWarning):
    """A line of a checkpoint file was unreadable and was ignored."""
