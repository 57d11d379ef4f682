# %% [markdown]
# # The fast simulator with a circuit of your own
#
# A circuit template is a PennyLane quantum function of `(inputs, weights)`. `QuantumLayer` turns it
# into a differentiable `torch.nn.Module` and runs it on a backend; `fast` (the default) executes the
# circuit's PennyLane tape as a batched torch statevector. Here we write our own circuit, check the
# fast backend against PennyLane's `default.qubit`, and train the layer for a few steps.
#
# PennyLane device: the `qml_imaging.fast` device (a PennyLane device name) is being added in a
# separate change; until it lands this tutorial uses the fast simulator through `QuantumLayer`, and
# PennyLane's own `default.qubit` as the reference.

# %%
# %matplotlib inline
import math

import pennylane as qml
import torch

from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.reporting.figures import curves

torch.manual_seed(0)
N_QUBITS = 3


def my_circuit(inputs, weights):
    """Angle encoding, then two layers of RY rotations and a CNOT chain; readout <Z_j>."""
    for j in range(N_QUBITS):
        qml.RX(inputs[..., j], wires=j)
    for layer in range(weights.shape[0]):
        for j in range(N_QUBITS):
            qml.RY(weights[layer, j], wires=j)
        for j in range(N_QUBITS - 1):
            qml.CNOT(wires=[j, j + 1])
    return [qml.expval(qml.PauliZ(j)) for j in range(N_QUBITS)]


template = CircuitTemplate("mine", N_QUBITS, (2, N_QUBITS), my_circuit)
layer = QuantumLayer(template, "fast")
inputs = torch.rand(5, N_QUBITS, dtype=torch.float64) * math.pi
fast = layer(inputs)
print(fast.detach())

# %% [markdown]
# The same circuit with the same weights on PennyLane's `default.qubit`:

# %%
reference_device = qml.device("default.qubit", wires=N_QUBITS)
reference = qml.QNode(my_circuit, reference_device, interface="torch")
weights = layer.weights.detach().double()
expected = torch.stack([torch.stack(reference(x, weights)) for x in inputs])
print("largest difference:", float((fast.detach() - expected).abs().max()))
assert torch.allclose(fast, expected, atol=1e-6)

# %% [markdown]
# The layer is an `nn.Module`: gradients flow through the simulator (backprop), so it trains like
# any torch layer. Fit the layer's three outputs to a target function of its inputs:

# %%
optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
x = torch.rand(64, N_QUBITS) * math.pi
target = torch.cos(x).prod(dim=1, keepdim=True).repeat(1, N_QUBITS)
losses = []
for _ in range(40):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(layer(x), target)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
curves({"my circuit": (list(range(1, 41)), losses)}, xlabel="step", ylabel="MSE")
