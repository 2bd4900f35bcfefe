"""``ResultDecoder``: turns the text a program published or returned into Python.

Programs serialize with ``RuntimeEncoder``, so results decode with
``RuntimeDecoder`` (from ``qiskit_ibm_runtime.json``); a plain string result is
stored raw and comes back unchanged. Subclass and call ``super().decode()`` to
post-process custom types, as with the seed.
"""

from __future__ import annotations

import json
from typing import Any

#: The tag every RuntimeEncoder-encoded object carries; text without it is plain JSON.
TYPE_TAG = '"__type__"'


class ResultDecoder:
    """Decode interim and final results (the seed's ``ResultDecoder``)."""

    @classmethod
    def decode(cls, data: str | bytes) -> Any:
        """Decode ``data``; text that is not JSON (e.g. ``All done!``) is returned unchanged.

        Plain JSON skips ``RuntimeDecoder``, whose import costs over a second, since
        it only acts on tagged objects.
        """
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        try:
            if TYPE_TAG not in data:
                return json.loads(data)
            from qiskit_ibm_runtime.json import RuntimeDecoder

            return json.loads(data, cls=RuntimeDecoder)
        except json.JSONDecodeError:
            return data


def encode_json(value: Any) -> str:
    """JSON text of ``value`` in the runtime wire format (``RuntimeEncoder`` when needed)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        from qiskit_ibm_runtime.json import RuntimeEncoder

        return json.dumps(value, cls=RuntimeEncoder)
