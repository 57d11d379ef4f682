"""A recorded circuit, planned once: its gates, where each parameter comes from, its programs and
its readout; and the cache of plans per function, weight shape, qubit count, dtype and device."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property

import torch

from qml_imaging.quantum.fast import caches
from qml_imaging.quantum.fast.gates import Gate, build_gates
from qml_imaging.quantum.fast.options import FALLBACKS, Fallback
from qml_imaging.quantum.fast.program import Context, Program, compile_program
from qml_imaging.quantum.fast.readout import Readout
from qml_imaging.quantum.fast.recording import decompose, record_tape


@dataclass
class CircuitPlan:
    """A recorded circuit. Nothing in it changes after it is built (``whole_program`` is compiled on
    first use); a call's values live in a :class:`~qml_imaging.quantum.fast.apply.Call`.

    A plan whose every gate parameter is an element of ``weights``, a column ``inputs[..., j]`` or a
    constant is *reusable*: later calls with new values of the same shapes gather the parameters in
    one indexing operation instead of recording the tape again. This assumes the function queues
    the same gates for every value (no control flow on values). Other plans (parameters that are
    expressions, trainable observables) are recorded again on each call (same execution, slower;
    counted as ``Fallback.RERECORDED``).
    """

    gates: list[Gate]
    n_qubits: int
    dtype: torch.dtype
    readout: Readout
    context: Context
    program: Program  # the readout absorbs trailing phases and permutations
    reusable: bool

    @classmethod
    def record(cls, function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int,
               dtype: torch.dtype) -> CircuitPlan:
        """Record ``function(inputs, weights)``'s tape and plan its execution in ``dtype`` on the inputs' device."""
        tape = record_tape(function, inputs, weights)
        built = build_gates(list(decompose(tape.operations)), inputs, weights, n_qubits, dtype)
        readout = Readout(list(tape.measurements), n_qubits, dtype, inputs.device)
        context = Context(built.gates, n_qubits, dtype, inputs.device)
        return cls(built.gates, n_qubits, dtype, readout, context,
                   compile_program(context, absorb_tail=readout.computational_basis),
                   built.reusable and readout.reusable)

    @cached_property
    def whole_program(self) -> Program:
        """The program with every gate applied (for the whole final state), compiled on first use."""
        return compile_program(self.context, absorb_tail=False)


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
caches.on_release(_PLANS.clear)  # plans go with the last executor too (caches.hold)


def plan_for(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int, dtype: torch.dtype) -> CircuitPlan:
    """The cached plan of ``function`` for these shapes, dtype and device, recorded when there is none
    (functions that cannot be weakly referenced are recorded on every call)."""
    key = (tuple(weights.shape), n_qubits, dtype, inputs.device)
    try:
        plan = _PLANS.get(function, {}).get(key)
    except TypeError:  # not weak-referenceable
        plan = None
    if plan is not None:
        return plan
    plan = CircuitPlan.record(function, inputs, weights, n_qubits, dtype)
    if not plan.reusable:
        FALLBACKS.add(Fallback.RERECORDED)
        return plan
    try:
        _PLANS.setdefault(function, {})[key] = plan
    except TypeError:  # not weak-referenceable
        pass
    return plan
