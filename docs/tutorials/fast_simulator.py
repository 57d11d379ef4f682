# %% [markdown]
# # The fast simulator with a circuit of your own
#
# The fast simulator runs a circuit's PennyLane tape as a batched torch statevector. It is reached two
# ways: from PennyLane, as the device `qml_imaging.fast` (registered as a PennyLane plugin when the
# toolkit is installed), and from `QuantumLayer`, which turns a circuit template (a PennyLane quantum
# function of `(inputs, weights)`) into a differentiable `torch.nn.Module`. Here we write our own
# circuit, run it both ways, check both against PennyLane's `default.qubit`, and train the layer.

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
layer = QuantumLayer(template)  # the fast backend; or QuantumLayer(template, backend_spec("aer_shots")), ...
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
# From PennyLane: the same circuit as a QNode on the `qml_imaging.fast` device, with gradients
# through torch as on any PennyLane device:

# %%
fast_device = qml.device("qml_imaging.fast", wires=N_QUBITS)
on_fast_device = qml.QNode(my_circuit, fast_device, interface="torch")
from_device = torch.stack([torch.stack(on_fast_device(x, weights)) for x in inputs])
print("largest difference to default.qubit:", float((from_device - expected).abs().max()))
assert torch.allclose(from_device, expected, atol=1e-6)

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
