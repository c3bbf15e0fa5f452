# syntax=docker/dockerfile:1
# One image for every pacsflow role; the command picks it:
#   docker run -p 8080:8080 pacsflow                     embedded archive (`pacsflow serve`)
#   pacsflow stow | qido | wado | worker                 pipeline mode (see compose.yaml)
# The build runs the README's install command (`pip install .`, without the venv): runtime
# dependencies only, no test extras. They install from wheels (checked on x86-64), so the image
# needs no compiler and no apt packages.
FROM python:3.11.14-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PACSFLOW_DATA_DIR=/var/lib/pacsflow

# An unprivileged user owning only the data directory (its home; Faust's worker also keeps its
# small state directory in the working directory).
RUN groupadd --system --gid 10001 pacsflow \
    && useradd --system --uid 10001 --gid pacsflow --home-dir /var/lib/pacsflow \
        --no-create-home --shell /usr/sbin/nologin pacsflow \
    && mkdir -p /var/lib/pacsflow \
    && chown pacsflow:pacsflow /var/lib/pacsflow

WORKDIR /opt/pacsflow
COPY pyproject.toml README.md ./
COPY pacsflow ./pacsflow
COPY services ./services
COPY streams ./streams
RUN pip install --no-cache-dir .
# The OHIF Viewer served at /viewer: the pinned @ohif/app from the npm registry, checked against
# its pinned integrity (docs/console.md).
ENV PACSFLOW_VIEWER_DIR=/opt/pacsflow/viewer
RUN pacsflow viewer install --dir /opt/pacsflow/viewer

WORKDIR /var/lib/pacsflow
USER 10001:10001
VOLUME ["/var/lib/pacsflow"]
EXPOSE 8080

# Liveness of the HTTP roles (serve, stow, qido, wado). The worker serves no HTTP: compose.yaml
# gives it its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PACSFLOW_PORT', '8080') + '/health', timeout=4)"]

ENTRYPOINT ["pacsflow"]
CMD ["serve", "--host", "0.0.0.0"]
