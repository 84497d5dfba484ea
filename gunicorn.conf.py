# Read by `gunicorn 'service:create_app()'` when started from this folder.
logger_class = "service.gunicorn_logger.RedactingGunicornLogger"
# Thread workers (gthread): a slow client, or the streamed CSV export of a large list, holds a
# thread rather than a whole process, and a long request never trips a sync worker's timeout.
# This one answers gunicorn's own refusals in the API's error shape, not as HTML.
worker_class = "service.gunicorn_worker.Worker"
threads = 4
# Above the app's own limits (service/web/request_limits.py), so that the app answers a long
# request line or header in its error shape (JSON under /api/, a page elsewhere). 8190 is the
# most gunicorn takes for a request line; 0 would mean no limit at all (gunicorn's Python parser
# then reads a line of any length into memory).
limit_request_line = 8190
limit_request_field_size = 16380
limit_request_fields = 200
# gunicorn 25+ opens a control socket for `gunicornc` at ~/.gunicorn/gunicorn.ctl, one path for
# every instance of a user, so two instances on one machine took each other's. Pressroom does
# not use it; `--control-socket PATH` turns it back on where wanted.
control_socket_disable = True


def child_exit(server: object, worker: object) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (several processes' /metrics summed), a process that ends
    takes its live gauges with it (prometheus_client's multiprocess mode)."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
