"""A release's way out, in one home: what the web, the API, the sweep and the workers call.

    control    publish, pause, resume, cancel, and the tasks each one owes (after the commit)
    ledger     the delivery rows: plan, claim with a lease, record what became of each
    batch      the loop: claim from a Ledger, send through a Transport, record into the Ledger
    transport  the Transport seam and its SMTP implementation; SendError and its classes
    journal    a batch's record in Redis of what the server took (the sweep reads it)
    rate       SEND_RATE, a token bucket shared by every worker
    messages   the release's MIME, built once per language, for the worker and the desk alike
    jobs       one function per worker task: start a release, send a batch, a reader's
               notice (through the same kept Transport), a test copy to press staff
    invitations the desk's confirmation invitations, one run at a time
    sweep      the backstop: expired leases, lost or stalled sends, due schedules, owed notices
    outbox     what the work needs from the process around it (sessions, Redis, Transport)
    progress   how a send stands, for the desk and the API

No module here imports Flask or Celery: the edges (workers/tasks.py, service/web) hand in a
session factory, a Redis client, a Transport and a way to ring tasks.
"""
