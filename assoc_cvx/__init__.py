"""Exact storage capacity of linear associative memories.

A matrix W stores the associations ``x_mu -> y_mu`` when every input scores
its own target above every competitor: ``y_mu^T W x_mu > y_nu^T W x_mu``.
assoc_cvx decides this exactly with convex programs, with evidence for every
verdict, and measures the capacity of random instances.
"""

import logging

from assoc_cvx.capacity import CapacityResult, find_capacity
from assoc_cvx.engine import SOLVERS, StorageResult, check_storage
from assoc_cvx.estimator import LinearAssociativeMemory
from assoc_cvx.exceptions import (
    AssocCvxError,
    CapacityWarning,
    CheckpointWarning,
    InsufficientMemoryError,
    SolverError,
    SolverWarning,
    StorageWarning,
)
from assoc_cvx.patterns import make_associations, make_competitors

__version__ = "0.1.0"

__all__ = [
    "SOLVERS",
    "AssocCvxError",
    "CapacityResult",
    "CapacityWarning",
    "CheckpointWarning",
    "InsufficientMemoryError",
    "LinearAssociativeMemory",
    "SolverError",
    "SolverWarning",
    "StorageResult",
    "StorageWarning",
    "__version__",
    "check_storage",
    "find_capacity",
    "make_associations",
    "make_competitors",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
