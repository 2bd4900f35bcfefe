import json

import numpy as np
from qiskit import QuantumCircuit
from qiskit_ibm_runtime.json import RuntimeEncoder


def main(backend, user_messenger, **kwargs):
    circuit = QuantumCircuit(2, 2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    messages = [
        {"circuit": circuit},
        {"array": np.arange(12, dtype=np.float64).reshape(3, 4) / 7},
        {"complex": 1.5 - 2.25j, "list": [1j, -0.5]},
    ]
    for message in messages:
        # What the encoder produced, printed so the test can compare the stream byte for byte.
        print("ENCODED " + json.dumps(message, cls=RuntimeEncoder))
        user_messenger.publish(message)
    return "sent"
