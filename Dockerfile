# syntax=docker/dockerfile:1
# One image for every Python service of the FinOps platform. The process is chosen by the
# command (default: the ingest service):
#   docker build -t finops-platform:0.1.0 .
#   docker run ... finops-platform:0.1.0                          # python -m finops_ingest
#   docker run ... finops-platform:0.1.0 python -m finops_allocation
# Configuration is by environment variables only (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS,
# FINOPS_*); see docker-compose.yml and deploy/k8s/.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY constraints.txt ./
COPY libs/ ./libs/
COPY services/ ./services/

# Non-editable installs into the virtualenv, every version pinned by constraints.txt.
RUN pip install --no-cache-dir -c constraints.txt \
        ./libs/contracts \
        ./libs/runtime \
        ./services/ingest \
        ./services/allocation \
        ./services/recommend \
        ./services/notify \
        ./services/decision \
        ./services/purchase \
        ./services/console \
    && pip check

# ---------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="finops-platform" \
      org.opencontainers.image.description="FinOps platform Python services (ingest, allocation, ...)" \
      org.opencontainers.image.version="0.1.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 finops \
    && useradd --system --uid 10001 --gid finops --no-create-home --home-dir /nonexistent \
               --shell /usr/sbin/nologin finops

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FINOPS_HTTP_HOST=0.0.0.0 \
    FINOPS_LOG_FORMAT=json

WORKDIR /tmp
USER 10001:10001

# ingest listens on 8001, allocation on 8002, recommend on 8003, notify on 8004 (FINOPS_HTTP_PORT).
EXPOSE 8001 8002 8003 8004

# Uses FINOPS_HTTP_PORT; set it explicitly for every service other than ingest.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FINOPS_HTTP_PORT', '8001'), timeout=4)" || exit 1

CMD ["python", "-m", "finops_ingest"]
