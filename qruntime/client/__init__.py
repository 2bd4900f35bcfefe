"""The qruntime client: the seed's ``provider.runtime`` interface on Qiskit 2.x.

Modules, one concept each: ``http`` (the REST session, one method per endpoint),
``streaming`` (the SSE consumer), ``vocabulary`` (the statuses, events, roles and
messages shared with the server), ``account`` (saved credentials), ``options``,
``decoder``, ``program``, ``job``, ``management`` and ``service``. The seed's
exception tree is :mod:`qruntime.exceptions`, where seed code expects it. This
package's ``__init__`` imports nothing, so the CLI can use ``http``,
``streaming`` and ``vocabulary`` without paying for qiskit; ``qruntime``
re-exports the public classes lazily.
"""
