# syntax=docker/dockerfile:1
# One image for all three KPI Pulse services (and the one-shot jobs): the command picks
# the role, e.g. `docker run kpipulse ingest`, `... scoring`, `... alerts`, `... migrate`,
# `... topics create`.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: resolve and install the project into a virtualenv ------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Metadata and the constraints first, so that the dependency layer is reused while only
# the code changes. `README*` may match nothing; pyproject.toml keeps the COPY valid.
COPY pyproject.toml constraints.txt README* ./
COPY shared/ ./shared/
COPY services/ ./services/
# A regular (non-editable) install: the runtime stage needs neither the sources nor pip's
# build tools, only the populated virtualenv.
RUN pip install -c constraints.txt .

# ---- runtime ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="kpipulse" \
      org.opencontainers.image.description="KPI Pulse: ingest, scoring and alerts services"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A fixed, unprivileged uid/gid so that mounted volumes can be owned predictably.
RUN groupadd --system --gid 10001 kpipulse \
 && useradd --system --uid 10001 --gid kpipulse --home-dir /app --shell /usr/sbin/nologin kpipulse

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The example catalog is what compose points KPIPULSE_SCORING__CATALOG_PATH at
# (/app/catalog/example.yaml); a deployment mounts its own catalog over this folder.
COPY --chown=kpipulse:kpipulse catalog/ ./catalog/

USER kpipulse:kpipulse

# Ports of ingest, scoring and alerts (each container uses one of them).
EXPOSE 8000 8001 8002

ENTRYPOINT ["kpipulse"]
CMD ["--help"]
