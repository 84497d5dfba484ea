# Read by `gunicorn 'service:create_app()'` when started from this folder.
logger_class = "service.logs.RedactingGunicornLogger"
