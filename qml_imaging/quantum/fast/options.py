"""How the fast simulator executes (:class:`FastOptions`), and the count of every fallback it takes.

The options change the execution strategy only, never a result: every strategy and group size gives
the same values to rounding (``tests/quantum/test_fast_random.py`` runs random circuits under several).
A *fallback* is a slower path taken because PennyLane could not do something the fast path needs (a
gate's batched matrix, its kind from sampled matrices, an observable's diagonalizing gates); each one
is counted in :data:`FALLBACKS` under a :class:`Fallback`, so a test or a user can see it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from enum import Enum


class Strategy(Enum):
    """How a run of data-independent gates is applied."""

    COST_MODEL = "cost_model"
    """Dense fusion or structured steps, whichever :mod:`~qml_imaging.quantum.fast.costs` says is cheaper."""
    DENSE = "dense"
    """Always fused into one dense unitary (up to ``costs.FUSE_MAX_QUBITS`` qubits; structured above)."""
    STRUCTURED = "structured"
    """Never fused: Kronecker groups, phase vectors, gathers and gates on their axes."""


MAX_GROUP_SIZE = 10
"""Largest Kronecker group (a ``2**10 x 2**10`` factor); the cost model never picks more."""


@dataclass(frozen=True)
class FastOptions:
    """Execution options of the fast simulator.

    ``strategy``: see :class:`Strategy`. ``group_size``: wires per Kronecker group of a one-qubit
    layer, 1..``MAX_GROUP_SIZE``; None lets the cost model choose per batch and device. Raises
    ValueError for a group size outside that range, TypeError for a strategy that is not a :class:`Strategy`.
    """

    strategy: Strategy = Strategy.COST_MODEL
    group_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise TypeError(f"strategy must be one of {[s.value for s in Strategy]} (a fast.Strategy), "
                             f"got {self.strategy!r}")
        size = self.group_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or not 1 <= size <= MAX_GROUP_SIZE):
            raise ValueError(f"group_size must be an integer in 1..{MAX_GROUP_SIZE} or None, got {size!r}")


class Fallback(Enum):
    """The slower paths the simulator can take; the value says what happened."""

    DECOMPOSED = "a gate whose matrix PennyLane cannot build for traced parameters was decomposed"
    NOT_VECTORISED = "a gate type's compute_matrix does not reproduce its gates: matrices built gate by gate"
    KIND_UNKNOWN = "a gate type's kind could not be judged from sampled matrices: treated as dense"
    NO_LINEAR_PHASE = "a diagonal gate type could not be probed for linear phases: its matrices are built"
    UNBOUND_MATRIX = "a gate's parameters could not be rebound as tensors: its own matrix is used"
    DENSE_OBSERVABLE = "an observable without diagonalizing gates or eigenvalues is applied as a matrix"
    NO_OBSERVABLE_MATRIX = "an observable without a matrix is read through its diagonalizing gates"
    RERECORDED = "a parameter is an expression or an observable is trainable: the tape is recorded every call"


class FallbackCounts:
    """Thread-safe counts of :class:`Fallback` events since the process started (or :meth:`reset`)."""

    def __init__(self) -> None:
        self._counts: Counter[Fallback] = Counter()
        self._lock = threading.Lock()

    def add(self, fallback: Fallback) -> None:
        """Count one use of ``fallback`` (thread-safe)."""
        with self._lock:
            self._counts[fallback] += 1

    def __getitem__(self, fallback: Fallback) -> int:
        return self._counts[fallback]

    def snapshot(self) -> dict[Fallback, int]:
        """A copy of the counts: ``{fallback: times taken}`` for every fallback taken at least once."""
        with self._lock:
            return dict(self._counts)


FALLBACKS = FallbackCounts()
"""Every fallback the fast simulator took in this process, by kind."""
