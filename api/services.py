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
from orchestrator.backends import BackendInfo
from orchestrator.dispatch import celery_config
from orchestrator.program_store import Programs
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore
from orchestrator.worker_registry import WorkerRecord, WorkerRegistry


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


    def workers_serving(self, info: BackendInfo, live: dict[str, WorkerRecord] | None = None) -> list[str]:
        """Names of the live workers consuming ``info``'s queue."""
        live = self.workers.live() if live is None else live
        return sorted(w for w, rec in live.items() if info.queue in rec.get("queues", []))

    def waiting_note(self, info: BackendInfo, live: dict[str, WorkerRecord] | None = None) -> str | None:
        """Why a QUEUED job for ``info`` cannot start yet, or None if some live worker serves it."""
        if self.workers_serving(info, live):
            return None
        return (
            f"No live worker serves backend {info.name} (queue {info.queue}); the job stays QUEUED "
            f"until a worker for it starts (qruntime worker --backends {info.name})."
        )


def services() -> Services:
    return current_app.extensions["qruntime"]
