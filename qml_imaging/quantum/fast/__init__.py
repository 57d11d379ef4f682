"""The fast backend: batched statevector execution of PennyLane quantum functions in plain torch.

Entry points (what executors call; all take ``function(inputs, weights)``, a PennyLane quantum
function, a batch ``inputs (B, n_qubits)`` and ``weights`` of any shape, and an optional
:class:`FastOptions`):

* :func:`expectation_values` -> ``(B, n_values)`` real: its ``expval`` / ``var`` / ``probs``;
* :func:`basis_probabilities` -> ``(B, 2**n)`` real: computational-basis probabilities of its state;
* :func:`final_state` -> ``(B, 2**n)`` complex: the state it prepares.

The simulator does not re-implement any circuit: it records the function's PennyLane tape
(``qml.tape.make_qscript``), decomposes templates down to gates with matrices, takes each gate's
matrix from PennyLane (``compute_matrix``, one vectorised call per gate type), and executes the
gates on a ``(B, 2**n)`` complex state, differentiable by backprop, on CPU or CUDA. Wire 0 is the
most significant bit, as in PennyLane. Any state-vector circuit PennyLane can express runs; anything
else is refused naming the operation. How it stays fast is in ``docs/architecture.md``, "The fast
quantum backend".

Modules, by verb: :mod:`.recording` (tape, decomposition, parameter tracing), :mod:`.gates` (gate
kinds, vectorised groups, linear phases), :mod:`.program` (typed steps), :mod:`.costs` (the cost
model: group size, fusion), :mod:`.plan` (a recorded circuit and the plan cache), :mod:`.apply`
(one call: the program applied to a state), :mod:`.kernels` (tensor operations), :mod:`.readout`
and :mod:`.measure` (measurements), :mod:`.memory` (the memory check), :mod:`.options`
(:class:`FastOptions`, :class:`Strategy`, the :data:`FALLBACKS` counts).
"""

from qml_imaging.quantum.fast.options import FALLBACKS, Fallback, FallbackCounts, FastOptions, Strategy
from qml_imaging.quantum.fast.simulate import DEFAULT_OPTIONS, basis_probabilities, expectation_values, final_state

__all__ = ["DEFAULT_OPTIONS", "FALLBACKS", "Fallback", "FallbackCounts", "FastOptions", "Strategy", "basis_probabilities",
           "expectation_values", "final_state"]
