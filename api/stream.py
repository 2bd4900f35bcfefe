"""``/jobs/{id}/stream``: Server-Sent Events (to be built)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("stream", __name__)
