"""What the API's views share: settings, Redis, job store, program registry, Celery."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import redis
from celery import Celery
from flask import current_app

from orchestrator.programs import ProgramRegistry
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore


@dataclasses.dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    registry: ProgramRegistry

    @classmethod
    def build(cls, settings: Settings) -> Services:
        client = connect(settings)
        return cls(
            settings=settings,
            redis=client,
            store=JobStore(client, settings),
            registry=ProgramRegistry(settings.program_paths),
        )

    @cached_property
    def celery(self) -> Celery:
        """A Celery client used only to send job ids (created on first submit)."""
        from workers.celery_app import make_celery

        return make_celery(self.settings)


def services() -> Services:
    return current_app.extensions["qruntime"]
