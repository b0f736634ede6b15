# The three images of agi-credit, one target each, built from the project's wheel:
#
#   --target training  --build-arg EXTRA=training    `agi-credit train`: R and train.R
#   --target predictor --build-arg EXTRA=predictor   `agi-credit serve`: R, rpy2, KServe
#   --target auth      --build-arg EXTRA=auth        `agi-credit auth`: no R, no KServe
#
# EXTRA is the pyproject extra installed in the image's venv; each target checks that it was
# given its own. `make images` (scripts/build-images.sh) and `docker compose build` pass
# both, from the repository root:
#   DOCKER_BUILDKIT=1 docker build --network host --target auth --build-arg EXTRA=auth \
#     [--secret id=ca,src=EXTRA-CA.pem] -t agi-credit-auth .
# Only what .dockerignore lets through is sent: pyproject.toml, README.md, constraints.txt,
# src/, training-job/train.R and scripts/docker/; the source reaches the wheel stage only.
# The OCI labels with version, revision and date are given by scripts/build-images.sh, so
# that a new commit changes no layer.

# --- Debian's Python, for the build stages only.
FROM debian:bookworm-slim AS build-python
# Package versions come from the bookworm (point release + security) archive at build
# time: pinning them would break each time a security update replaces a version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/docker/with-ca.sh /usr/local/bin/with-ca

# --- The dependency list of this image: the core + its extra. Only the file it writes
# reaches the next stage, so an edit elsewhere in pyproject.toml (version, tool settings)
# does not re-run the pip install below.
FROM build-python AS requirements
ARG EXTRA
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"][sys.argv[2]]))' \
        /src/pyproject.toml "${EXTRA:?build with --build-arg EXTRA=training, predictor or auth}" \
        > /requirements.txt

# --- The virtual environment with the pinned dependencies, and nothing of the project.
# rpy2 (predictor, training) is built in ABI mode: no compiler, no R at build time.
FROM build-python AS deps
RUN python3 -m venv /opt/venv
COPY constraints.txt /tmp/constraints.txt
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca \
    --mount=type=tmpfs,target=/run/ca \
    --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    RPY2_CFFI_MODE=ABI with-ca /opt/venv/bin/pip install --disable-pip-version-check \
        --requirement /tmp/requirements.txt --constraint /tmp/constraints.txt

# --- The project's wheel, built from its source here: the source tree stays in this stage.
FROM build-python AS wheel
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN --mount=type=secret,id=ca \
    --mount=type=tmpfs,target=/run/ca \
    --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    python3 -m venv /tmp/build \
    && with-ca /tmp/build/bin/pip wheel --disable-pip-version-check --quiet --no-deps \
        -w /dist /src

# --- What every image is: Debian's python3 (and R, but for auth), the venv and the wheel,
# a non-root user, ENV=prod.
FROM debian:bookworm-slim AS app
ARG EXTRA
# See build-python for why Debian versions are not pinned; $r_packages is a list of words.
# hadolint ignore=DL3008,SC2086
RUN case "${EXTRA:?}" in \
        auth) r_packages="" ;; \
        *) r_packages="r-base-core r-cran-recipes r-cran-data.table r-cran-jsonlite" ;; \
    esac \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 $r_packages \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 agi \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin agi \
    && install -d -m 0755 /opt/agi-credit
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    TZ=UTC \
    ENV=prod
COPY --from=deps /opt/venv /opt/venv
# The project: its wheel (from the wheel stage; no source tree), bind-mounted, so that it
# lands in no layer, and installed without dependencies in a layer of its own: a code
# change rebuilds and ships only this layer (about 1 MB), never the dependencies' layer.
RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/dist \
    /opt/venv/bin/pip install --disable-pip-version-check --no-cache-dir --no-index --no-deps \
        /tmp/dist/agi_credit-*.whl \
    && /opt/venv/bin/pip check --disable-pip-version-check
WORKDIR /opt/agi-credit
ENTRYPOINT ["agi-credit"]

# --- The training job: split, the data scientists' train.R, validation, registration and
# promotion in the store at /mnt/store, a report. Run once per version (a Kubernetes Job).
FROM app AS training
ARG EXTRA
# The store and the data are volumes: a fresh one mounted at /mnt/store or /mnt/data takes
# the image directory's owner (10001), so the job can write to it.
RUN { test "${EXTRA}" = training || { echo "build --target training with --build-arg EXTRA=training" >&2; exit 1; }; } \
    && install -d -o 10001 -g 10001 -m 0775 /mnt/store /mnt/data
# Plots go to /tmp (matplotlib's config and cache), so the root filesystem can be read-only.
ENV R_HOME=/usr/lib/R \
    MPLCONFIGDIR=/tmp \
    XDG_CACHE_HOME=/tmp \
    MODEL_STORE=/mnt/store \
    DATA_PATH=/mnt/data/application_train.csv \
    TRAIN_SCRIPT=/opt/agi-credit/train.R
# The data scientists' script (TRAIN_SCRIPT), last: it changes on its own schedule.
COPY training-job/train.R /opt/agi-credit/train.R
USER 10001:10001
# A run-once job serves nothing: the check only says the installation is whole.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import agi_credit"]
CMD ["train"]
LABEL org.opencontainers.image.title="agi-credit-training" \
      org.opencontainers.image.description="Training job for R credit-risk models (agi-credit train)"

# --- The KServe predictor: Open Inference Protocol v2 REST :8080 and gRPC :8081, KServe
# v1, scoring R models through rpy2 and a child Rscript.
FROM app AS predictor
ARG EXTRA
RUN { test "${EXTRA}" = predictor || { echo "build --target predictor with --build-arg EXTRA=predictor" >&2; exit 1; }; } \
    && install -d -o 10001 -g 10001 -m 0775 /mnt/store
ENV R_HOME=/usr/lib/R \
    MPLCONFIGDIR=/tmp \
    MODEL_STORE=/mnt/store \
    KSERVE_STORAGE_PATH=/mnt/models \
    PREDICTOR_HOST=127.0.0.1 \
    HTTP_PORT=8080 \
    GRPC_PORT=8081
USER 10001:10001
EXPOSE 8080 8081
# Liveness, not readiness (/v2/health/ready is 503 while no version can be served).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/live' % os.environ.get('HTTP_PORT', '8080'), timeout=3)"]
CMD ["serve"]
LABEL org.opencontainers.image.title="agi-credit-predictor" \
      org.opencontainers.image.description="KServe predictor for R credit-risk models (agi-credit serve)"

# --- The JWT auth sidecar on :8000 (gRPC :8001), the only door to the predictor, which
# listens on the pod's localhost. ENV=prod: it refuses to start without JWT_SECRET (>= 32
# bytes) and USERS_FILE (argon2id hashes, `agi-credit users add`); the image holds neither.
FROM app AS auth
ARG EXTRA
# /etc/agi-credit: where a users file can be mounted (USERS_FILE=/etc/agi-credit/users.yaml).
# A fresh volume mounted there takes this directory's owner (10001), so that
# `agi-credit users add NAME --file /etc/agi-credit/users.yaml` can write to it.
RUN { test "${EXTRA}" = auth || { echo "build --target auth with --build-arg EXTRA=auth" >&2; exit 1; }; } \
    && install -d -o 10001 -g 10001 -m 0750 /etc/agi-credit
ENV AUTH_HOST=0.0.0.0 \
    AUTH_PORT=8000 \
    PREDICTOR_URL=http://127.0.0.1:8080
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('AUTH_PORT', '8000'), timeout=3)"]
CMD ["auth"]
LABEL org.opencontainers.image.title="agi-credit-auth" \
      org.opencontainers.image.description="JWT auth sidecar in front of the agi-credit predictor (agi-credit auth)"
