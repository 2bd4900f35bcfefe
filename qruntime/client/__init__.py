"""The qruntime client: the seed's ``provider.runtime`` interface on Qiskit 2.x.

Modules, one concept each: ``http`` (the REST session), ``streaming`` (the SSE
consumer), ``account`` (saved credentials), ``exceptions`` (the seed's exception
tree), ``options``, ``decoder``, ``program``, ``job`` and ``service``. This
package's ``__init__`` imports nothing, so the CLI can use ``http`` and
``streaming`` without paying for qiskit; ``qruntime`` re-exports the public
classes lazily.
"""
