"""What the API's views share: settings, Redis, job store, programs, accounts, workers, the
input checker, Celery."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import redis
from celery import Celery
from flask import current_app

from api.checker import Checker
from orchestrator.accounts import Accounts
from orchestrator.dispatch import celery_config
from orchestrator.program_store import Programs
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore
from orchestrator.worker_registry import WorkerRegistry


@dataclasses.dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    programs: Programs
    accounts: Accounts
    workers: WorkerRegistry
    checker: Checker

    @classmethod
    def build(cls, settings: Settings) -> Services:
        client = connect(settings)
        store = JobStore(client, settings)
        return cls(
            settings=settings,
            redis=client,
            store=store,
            programs=Programs.for_settings(client, settings),
            accounts=Accounts(client, store.keys),
            workers=WorkerRegistry(client, store.keys),
            checker=Checker(settings),
        )

    @cached_property
    def celery(self) -> Celery:
        """A Celery client used only to send job ids (created on first submit)."""
        app = Celery("qruntime", set_as_current=False)
        app.conf.update(celery_config(self.settings))
        return app


def services() -> Services:
    return current_app.extensions["qruntime"]
