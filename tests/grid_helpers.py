"""A grid task for worker-process tests, in a module that imports nothing heavy (a worker imports it)."""

import os


def value_or_die(value: int) -> int:
    """Returns ``value``; a negative one ends the process at once with exit code ``-value`` (as a killed worker)."""
    if value < 0:
        os._exit(-value)
    return value
