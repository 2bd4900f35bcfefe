"""The words the client and the CLI share with the server, defined once on this side.

The client must not import the server's packages (they pull in Flask, Celery and
Redis), so this module restates the few names it reads off the wire, and
``tests/test_vocabulary.py`` ties each one to the server's definition:

- job statuses: ``orchestrator.status.JobStatus`` (final and pending sets too);
- event types of ``GET /jobs/{id}/stream``: ``orchestrator.events.EVENT_*``;
- roles: ``orchestrator.accounts.ROLE_*``;
- the server's sentences the client builds on: "Job not found: <id>",
  "Program not found: <id>", "Unknown backend '<name>'…";
- the seed's ``error_message()`` templates, by the server status they describe.

It also names the two resources whose failures the seed raised its own classes
for (the keys of :data:`qruntime.exceptions.STATUS_ERRORS`). It imports nothing,
so ``qruntime --help`` can use it for free.
"""

from __future__ import annotations

# -- job statuses (the ``status`` field of a job) ----------------------------------------
QUEUED = "QUEUED"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
CANCELLED_RAN_TOO_LONG = "CANCELLED - RAN TOO LONG"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, CANCELLED_RAN_TOO_LONG)
PENDING_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (COMPLETED, FAILED, CANCELLED, CANCELLED_RAN_TOO_LONG)

# -- event types of a job's stream ---------------------------------------------------------
EVENT_STATUS = "status"
EVENT_INTERIM = "interim"
EVENT_LOG = "log"
EVENT_DONE = "done"
EVENT_RESTART = "restart"
EVENT_TYPES = (EVENT_STATUS, EVENT_INTERIM, EVENT_LOG, EVENT_DONE, EVENT_RESTART)
#: A ``restart`` event's ``resume``: the next run goes on from the program's last checkpoint, or starts over.
RESUME_CHECKPOINT = "checkpoint"
RESUME_START = "start"

# -- roles of users ------------------------------------------------------------------------
ROLE_ADMIN = "admin"
ROLE_DEVELOPER = "developer"
ROLE_USER = "user"
ROLES = (ROLE_ADMIN, ROLE_DEVELOPER, ROLE_USER)

# -- resources whose failures the seed named --------------------------------------------
RESOURCE_JOB = "job"
RESOURCE_PROGRAM = "program"

# -- messages ------------------------------------------------------------------------------
#: The seed's ``error_message()`` of a job that ended in error, by server status; filled
#: with the job id and the job's result text (the program's traceback, or the reason).
FAILURE_MESSAGES = {
    FAILED: "Job {} has failed:\n{}",
    CANCELLED_RAN_TOO_LONG: "Job {} ran longer than maximum execution time. Job was cancelled:\n{}",
}
#: How the server's 404 sentences start (the seed prefixed its own messages the same way).
JOB_NOT_FOUND = "Job not found: "
PROGRAM_NOT_FOUND = "Program not found: "
#: How the server's 400 sentence for a backend it does not know starts.
UNKNOWN_BACKEND = "Unknown backend "


def failure_message(job_id: str, status: str, text: str) -> str:
    """The seed's sentence for a job that ended in ``status`` with result ``text``."""
    return FAILURE_MESSAGES.get(status, FAILURE_MESSAGES[FAILED]).format(job_id, text)
