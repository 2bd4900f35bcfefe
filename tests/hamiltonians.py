"""Hamiltonians the tests and benchmarks share."""

#: The 2-qubit reduced H2 Hamiltonian at 0.735 Å (parity mapping), electronic part.
H2_TERMS = [
    ("II", -1.052373245772859),
    ("IZ", 0.39793742484318045),
    ("ZI", -0.39793742484318045),
    ("ZZ", -0.01128010425623538),
    ("XX", 0.18093119978423156),
]
