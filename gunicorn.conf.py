# Read by `gunicorn 'service:create_app()'` when started from this folder.
logger_class = "service.logs.RedactingGunicornLogger"
# Threads: a publisher's CSV import of a large list runs for a minute or two inside its request,
# and a thread worker keeps its heartbeat while a request runs (a sync worker would be killed at
# `timeout` and the import cut off after its last committed chunk).
worker_class = "gthread"
threads = 4
