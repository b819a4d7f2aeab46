"""Placeholder: being written."""


class LinearAssociativeMemory:
    pass
