# Read by `gunicorn 'service:create_app()'` when started from this folder.
logger_class = "service.logs.RedactingGunicornLogger"
# Thread workers: a slow client, or the streamed CSV export of a large list, holds a thread
# rather than a whole process, and a long request never trips a sync worker's timeout.
worker_class = "gthread"
threads = 4
