"""Warnings and errors raised by assoc_cvx."""

__all__ = [
    "AssocCvxError",
    "SolverError",
    "SolverWarning",
    "StorageWarning",
]


class AssocCvxError(Exception):
    """Base class of the errors raised by assoc_cvx."""


class SolverError(AssocCvxError, RuntimeError):
    """A solver is unusable: not installed, or it failed on every attempt."""


class SolverWarning(UserWarning):
    """A solver returned an inaccurate or failed answer that was discarded.

    The verdict then came from another solver, or is undecided.
    """


class StorageWarning(UserWarning):
    """The associations could not all be stored (or it could not be decided)."""
