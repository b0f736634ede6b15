#!/usr/bin/env bash
# Build the three container images from the project's wheel, targets of ./Dockerfile:
#   agi-credit-training   the training job   (--target training,  CMD train)
#   agi-credit-predictor  the KServe server  (--target predictor, CMD serve)
#   agi-credit-auth       the JWT sidecar    (--target auth,      CMD auth)
# each tagged <yyyymmdd>-<short sha> (plus -dirty when the tree has uncommitted changes)
# and latest, with the OCI labels of its version, revision and date.
#
# Steps: a Docker engine (scripts/ensure-docker.sh) and the base image
# (scripts/base-image.sh); then one BuildKit build per image, with host networking (the
# wheel stage is shared: built once, then cached).
#
# Environment:
#   IMAGES="training predictor auth"   which images to build
#   EXTRA_CA_BUNDLE=FILE   CA certificates pip inside the build must trust (a TLS-
#                          inspecting proxy), given as the BuildKit secret `ca`; default:
#                          this machine's /etc/ssl/certs/ca-certificates.crt when it
#                          exists; set it empty to pass none
#   DOCKER=PATH            a docker client that builds with BuildKit (default: `docker` when
#                          it has buildx, else Debian's /usr/bin/docker)
#   BUILD_ARGS="..."       more `docker build` arguments (e.g. --no-cache)
#   GHA_CACHE=1            in GitHub Actions (docker/setup-buildx-action): BuildKit's cache
#                          in the Actions cache, one scope per image, images loaded. Needs
#                          the Actions runtime in the environment (ACTIONS_RUNTIME_TOKEN and
#                          ACTIONS_RESULTS_URL or ACTIONS_CACHE_URL), which `run:` steps get
#                          only from crazy-max/ghaction-github-runtime: without it buildx
#                          would drop the cache silently, so this stops instead
#   VERBOSE=1              stream the build output (default: a log file per image)
#   TAG_FILE=PATH          write the <yyyymmdd>-<short sha> tag there
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-training predictor auth}
EXTRA_CA_BUNDLE=${EXTRA_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
LOG_DIR=${LOG_DIR:-${TMPDIR:-/tmp}/agi-credit-images}

say() { echo "images: $*" >&2; }
for name in $IMAGES; do
  case "$name" in
    training | predictor | auth) ;;
    *) say "unknown image '$name' (training, predictor or auth)"; exit 1 ;;
  esac
done
if [ -n "${GHA_CACHE:-}" ] &&
  { [ -z "${ACTIONS_RUNTIME_TOKEN:-}" ] || [ -z "${ACTIONS_RESULTS_URL:-}${ACTIONS_CACHE_URL:-}" ]; }; then
  say "GHA_CACHE=$GHA_CACHE but the GitHub Actions runtime is not in the environment"
  say "(ACTIONS_RUNTIME_TOKEN, ACTIONS_RESULTS_URL): buildx would build without its cache."
  say "In a workflow, add 'uses: crazy-max/ghaction-github-runtime@v3' before this step;"
  say "elsewhere, unset GHA_CACHE."
  exit 1
fi

scripts/ensure-docker.sh engine
scripts/base-image.sh

# `DOCKER_BUILDKIT=1 docker build` needs the buildx plugin from Docker 23 on; Debian
# bookworm's docker.io client (20.10) has BuildKit built in.
if [ -z "${DOCKER:-}" ]; then
  if docker buildx version >/dev/null 2>&1; then
    DOCKER=docker
  elif [ -x /usr/bin/docker ] &&
    [ "$(/usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" -lt 23 ] 2>/dev/null; then
    DOCKER=/usr/bin/docker
  else
    say "no docker client here builds with BuildKit: install the buildx plugin"
    say "(Debian: docker-buildx; Docker: docker-buildx-plugin) or set DOCKER=/path/to/docker"
    exit 1
  fi
fi
export DOCKER_BUILDKIT=1

# --- Tags and labels. The wheel is built inside the build (the Dockerfile's wheel stage).
python=.venv/bin/python
[ -x "$python" ] || python=python3
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision=$(git rev-parse HEAD)
  short=$(git rev-parse --short HEAD)
  image_inputs=(pyproject.toml constraints.txt README.md src training-job scripts/docker
    .dockerignore Dockerfile)
  if [ -n "$(git status --porcelain --untracked-files=normal -- "${image_inputs[@]}" 2>/dev/null)" ]; then
    revision="$revision-dirty"
    short="$short-dirty"
  fi
  source_url=$(git config --get remote.origin.url 2>/dev/null || true)
else
  revision=unknown short=nogit source_url=""
fi
tag="$(date -u +%Y%m%d)-$short"
[ -n "${TAG_FILE:-}" ] && echo "$tag" >"$TAG_FILE"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$LOG_DIR"

# --- The images.
secret=()
if [ -n "$EXTRA_CA_BUNDLE" ]; then
  if [ -s "$EXTRA_CA_BUNDLE" ]; then
    secret=(--secret "id=ca,src=$EXTRA_CA_BUNDLE")
  else
    say "EXTRA_CA_BUNDLE=$EXTRA_CA_BUNDLE is not a file: building without an extra CA"
  fi
fi
# No provenance attestation: with Docker 29's containerd image store it makes each image an
# index holding an attestation manifest too, which `kind load docker-image` cannot import.
# Only buildx's `docker build` has the flag (not Debian's 20.10 client).
provenance=()
case "$("$DOCKER" build --help 2>/dev/null || true)" in
  *--provenance*) provenance=(--provenance=false) ;;
esac
summary=()
for name in $IMAGES; do
  cache=()
  if [ -n "${GHA_CACHE:-}" ]; then
    cache=(--load --cache-from "type=gha,scope=$name" --cache-to "type=gha,mode=max,scope=$name")
  fi
  image=agi-credit-$name
  log=$LOG_DIR/$name.log
  start=$SECONDS
  say "building $image:$tag (log: $log)"
  # shellcheck disable=SC2086  # BUILD_ARGS is a list of arguments
  if ! "$DOCKER" build --network host --progress plain --target "$name" \
    --build-arg "EXTRA=$name" "${secret[@]}" "${cache[@]}" "${provenance[@]}" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.created=$created" \
    --label "org.opencontainers.image.source=$source_url" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    --label "org.opencontainers.image.base.name=debian:bookworm-slim" \
    -t "$image:$tag" -t "$image:latest" ${BUILD_ARGS:-} . \
    > >(if [ -n "${VERBOSE:-}" ]; then tee "$log"; else cat >"$log"; fi) 2>&1; then
    sleep 0.2
    say "building $image failed; the end of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
  seconds=$((SECONDS - start))
  sleep 0.2 # let the log writer finish
  # Build steps (not BuildKit's [internal] ones, nor FROM and WORKDIR, not always shown
  # as cached), and how many came from the cache.
  read -r steps cached < <(awk '
    /^#[0-9]+ \[/ && !/^#[0-9]+ \[internal\]/ && !/\] (FROM|WORKDIR) / { step[$1] = 1 }
    /^#[0-9]+ CACHED$/ { hit[$1] = 1 }
    END { n = 0; c = 0; for (s in step) { n++; if (s in hit) c++ }; print n, c }' "$log")
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$image:$tag" | awk '{printf "%.0f MB", $1 / 1e6}')
  summary+=("$(printf '%-22s %-32s %4d s  %7s  (%s of %s steps cached)' \
    "$image" "$tag" "$seconds" "$size" "$cached" "$steps")")
done
say "done:"
printf '  %s\n' "${summary[@]}" >&2
