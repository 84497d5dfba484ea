"""The desk's CSV upload, imported in the background as listmonk does it (the rules for each row
are service/domain/imports.py; this is the job around them, its state kept in Redis).

The desk stores the uploaded file in Redis with the import's options and enqueues
`import_subscribers`; a worker imports it chunk by chunk, one transaction per chunk, and keeps
the job's state in Redis, where the desk's page reads it: status, lines read, running counts,
and at the end the report (counts, ignored columns, the first SHOWN_NOTES lines left out).

Keys, each expiring JOB_TTL after its last change:
  pressroom:import:<id>        the job as JSON
  pressroom:import:<id>:file   the uploaded bytes as sent, deleted once the job has ended
  pressroom:import:<id>:lock   held by the run in progress, so that two runs never overlap

A crash: the task is acknowledged late, so a worker that dies mid-import leaves the job to run
again. After each chunk's commit the job records its checkpoint (the file's lines read) with
the counts so far; a new run skips the file up to that line and goes on counting from there, so
the report stays that of one import. Only a crash in the instant between a chunk's commit and
its checkpoint makes that chunk run twice: its rows are then counted as "already there" rather
than imported, and nobody is added twice.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from service.app_state import session_scope
from service.db import utcnow
from service.domain import imports
from service.domain.errors import N_, DomainError
from service.domain.imports import ImportOptions, ImportReport, Outcome, RowNote

log = logging.getLogger(__name__)

JOB_TTL = 24 * 3600  # seconds a job's file and report are kept after its last change
LOCK_SECONDS = 120  # a run renews it at every chunk; a crashed run's lock lapses after this
SHOWN_NOTES = 500  # lines of a report kept and listed; the counts are always whole
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobBusy(Exception):
    """Another run holds this job (or held it and crashed, until its lock lapses)."""


@dataclass
class ImportJob:
    id: str
    options: ImportOptions
    publisher_id: int
    status: JobStatus = JobStatus.QUEUED
    lines_read: int = 0  # the checkpoint: the file's lines whose rows are committed
    report: ImportReport = field(default_factory=ImportReport)  # notes: the first SHOWN_NOTES
    runs: int = 0
    error: str | None = None  # a catalog message, with its params
    error_params: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    def to_json(self) -> str:
        report = self.report
        return json.dumps(
            {
                "options": dataclasses.asdict(self.options),
                "publisher_id": self.publisher_id,
                "status": self.status.value,
                "lines_read": self.lines_read,
                "counts": {
                    name: getattr(report, name)
                    for name in ("imported", "exists", "suppressed", "opted_out", "rejected")
                },
                "ignored_columns": list(report.ignored_columns),
                "notes": [
                    {
                        "line": note.line,
                        "outcome": note.outcome.value,
                        "email": note.email,
                        "reason": note.reason,
                        "message": note.message,
                        "params": [list(pair) for pair in note.params],
                    }
                    for note in report.notes
                ],
                "runs": self.runs,
                "error": self.error,
                "error_params": self.error_params,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, job_id: str, raw: str | bytes) -> ImportJob:
        data = json.loads(raw)
        options = data["options"]
        options["offered_topics"] = tuple(options["offered_topics"])
        report = ImportReport(
            **data["counts"],
            ignored_columns=tuple(data["ignored_columns"]),
            notes=[
                RowNote(
                    line=note["line"],
                    outcome=Outcome(note["outcome"]),
                    email=note["email"],
                    reason=note["reason"],
                    message=note["message"],
                    params=tuple((name, value) for name, value in note["params"]),
                )
                for note in data["notes"]
            ],
        )
        return cls(
            id=job_id,
            options=ImportOptions(**options),
            publisher_id=data["publisher_id"],
            status=JobStatus(data["status"]),
            lines_read=data["lines_read"],
            report=report,
            runs=data["runs"],
            error=data["error"],
            error_params=data["error_params"],
        )


def job_key(job_id: str) -> str:
    return f"pressroom:import:{job_id}"


def file_key(job_id: str) -> str:
    return f"pressroom:import:{job_id}:file"


def lock_key(job_id: str) -> str:
    return f"pressroom:import:{job_id}:lock"


def create(client: redis.Redis, data: bytes, options: ImportOptions, *, publisher_id: int) -> str:
    """Keep a checked upload (imports.open_csv read it) and its options; the new job's id,
    unguessable. Enqueue `import_subscribers` with it afterwards."""
    job_id = secrets.token_urlsafe(24)
    job = ImportJob(job_id, options, publisher_id)
    with client.pipeline() as pipe:  # MULTI/EXEC: both keys or neither
        pipe.set(file_key(job_id), data, ex=JOB_TTL)
        pipe.set(job_key(job_id), job.to_json(), ex=JOB_TTL)
        pipe.execute()
    return job_id


def discard(client: redis.Redis, job_id: str) -> None:
    """Forget a job that could not be enqueued, so that nothing stays behind a 503: its page
    would otherwise show a queued import that no worker will ever run."""
    client.delete(file_key(job_id), job_key(job_id))


def load(client: redis.Redis, job_id: str) -> ImportJob | None:
    """The job, or None when there is no such job (or no longer: it expired)."""
    if not _JOB_ID.fullmatch(job_id):
        return None
    raw = client.get(job_key(job_id))
    return None if raw is None else ImportJob.from_json(job_id, raw)


INTERRUPTED = "interrupted"


def run(
    client: redis.Redis,
    job_id: str,
    *,
    chunk_size: int = imports.CHUNK_SIZE,
    stop: Callable[[], bool] = lambda: False,
) -> str:
    """Import the job's file to its end, or resume it at its checkpoint; its final status, or
    INTERRUPTED when `stop()` said to stop after a chunk (run it again to resume). A job
    already ended is left as it is: running it again changes nothing."""
    for _ in steps(client, job_id, chunk_size=chunk_size):
        if stop():
            return INTERRUPTED
    job = load(client, job_id)
    return job.status.value if job else "expired"


def steps(
    client: redis.Redis, job_id: str, *, chunk_size: int = imports.CHUNK_SIZE
) -> Iterator[ImportJob]:
    """The import, yielding the job after each chunk is committed and checkpointed.

    Raises JobBusy while another run holds the job.
    """
    job = load(client, job_id)
    if job is None or job.finished:
        return
    owner = secrets.token_hex(8)
    if not client.set(lock_key(job_id), owner, nx=True, ex=LOCK_SECONDS):
        raise JobBusy(job_id)
    try:
        data = client.get(file_key(job_id))
        if data is None:
            _finish(client, job, JobStatus.FAILED, N_("The uploaded file expired unread."))
            return
        job.status = JobStatus.RUNNING
        job.runs += 1
        if job.runs > 1:
            log.warning("import %s: run %s resumes after line %s", job_id, job.runs, job.lines_read)
        _save(client, job)
        try:
            yield from _import(client, job, data, chunk_size)
        except DomainError as error:
            _finish(client, job, JobStatus.FAILED, error.message, **error.params)
            return
        except Exception:
            _finish(
                client,
                job,
                JobStatus.FAILED,
                N_("The import stopped after line %(line)s because of an unexpected error."),
                line=job.lines_read,
            )
            raise
        _finish(client, job, JobStatus.DONE)
    finally:
        if client.get(lock_key(job_id)) == owner.encode():
            client.delete(lock_key(job_id))


def _import(
    client: redis.Redis, job: ImportJob, data: bytes, chunk_size: int
) -> Iterator[ImportJob]:
    source = imports.open_csv(io.BytesIO(data))
    source.skip_to(job.lines_read)
    job.report.ignored_columns = source.ignored_columns
    now = utcnow()
    with session_scope() as session:
        for part in imports.import_batches(
            session, source, job.options, now=now, chunk_size=chunk_size
        ):
            session.commit()
            job.report.add(part, keep_notes=False)
            room = SHOWN_NOTES - len(job.report.notes)
            if room > 0:
                job.report.notes.extend(part.notes[:room])
            job.lines_read = source.lines_read
            _save(client, job)
            client.expire(lock_key(job.id), LOCK_SECONDS)
            yield job
    job.lines_read = source.lines_read


def _save(client: redis.Redis, job: ImportJob) -> None:
    client.set(job_key(job.id), job.to_json(), ex=JOB_TTL)


def _finish(
    client: redis.Redis, job: ImportJob, status: JobStatus, error: str | None = None, **params: Any
) -> None:
    job.status, job.error, job.error_params = status, error, params
    with client.pipeline() as pipe:  # the report and the file's removal together
        pipe.set(job_key(job.id), job.to_json(), ex=JOB_TTL)
        pipe.delete(file_key(job.id))
        pipe.execute()
