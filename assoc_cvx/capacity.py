"""Placeholder: being written."""


class CapacityResult:
    pass


def find_capacity(*args, **kwargs):
    raise NotImplementedError
