"""Fault drills: real processes killed, cut off and failed over, small enough for CI.

Each drill lives in :mod:`tests.faults.drills` (or a sibling module) as a function
returning a :class:`tests.faults.drill.DrillResult`; the tests here run each drill
at a small size and assert it lost, repeated and left stuck nothing, and
``bench/faults.py`` runs the same drills at size and prints their figures.
"""
