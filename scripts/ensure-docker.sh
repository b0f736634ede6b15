#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, and that both Compose flavours are there:
# `docker-compose` (v1.29.2, Debian bookworm) and `docker compose` (the v2 plugin, 2.26.1
# from Debian trixie; its .deb needs only libc6 >= 2.34 and installs on bookworm).
#
# As root on a Debian-like system it installs what is missing: Debian's docker.io and
# docker-compose with apt, the v2 plugin's binary out of trixie's .deb (checksum-pinned);
# and starts dockerd in the background when nothing answers (there is no systemd here; log
# in $DOCKERD_LOG). Otherwise it says what is missing and exits 1. Quick and silent when
# everything is there. With the argument `engine`, an answering engine is enough.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

# Compose v2 from Debian trixie, pinned by checksum. If the pool no longer holds this
# exact file (a trixie point release replaced it), apt fetches trixie's current one.
COMPOSE_V2_MIRROR=${COMPOSE_V2_MIRROR:-}
COMPOSE_V2_DEB=docker-compose_2.26.1-4_amd64.deb
COMPOSE_V2_SHA256=47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea

say() { echo "ensure-docker: $*" >&2; }

engine_ok() { docker info >/dev/null 2>&1; }
compose_v1_ok() { command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; }
compose_v2_ok() { docker compose version >/dev/null 2>&1; }

# `ensure-docker.sh engine`: only the engine (image builds, kind), not Compose.
if [ "${1:-}" = engine ] && engine_ok; then
  exit 0
fi
if engine_ok && compose_v1_ok && compose_v2_ok; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  {
    echo "ensure-docker: only root can set up what is missing here:"
    engine_ok || echo "  - a Docker engine that answers \`docker info\` (as this user): e.g. on Debian"
    engine_ok || echo "      sudo apt-get install -y --no-install-recommends docker.io"
    engine_ok || echo "      sudo dockerd >/var/log/dockerd.log 2>&1 &   # or: sudo systemctl start docker"
    engine_ok || echo "      sudo usermod -aG docker \"\$USER\"           # then log in again"
    compose_v1_ok || echo "  - docker-compose (v1): sudo apt-get install -y --no-install-recommends docker-compose"
    compose_v2_ok || echo "  - the Compose v2 plugin (\`docker compose version\`): e.g. the file"
    compose_v2_ok || echo "      usr/libexec/docker/cli-plugins/docker-compose of Debian trixie's $COMPOSE_V2_DEB"
    compose_v2_ok || echo "      installed at /usr/libexec/docker/cli-plugins/docker-compose"
    echo "Or run this script as root (sudo $0): it does all of it."
  } >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no working Docker engine and this is not a Debian-like system: install Docker and"
  say "the Compose v2 plugin, start the engine, and run this again."
  exit 1
fi

# shellcheck source=scripts/lib/debian-mirror.sh
source "$(dirname "$0")/lib/debian-mirror.sh"

export DEBIAN_FRONTEND=noninteractive

# Debian's engine only when there is none (a Docker CE install is left alone); v1 when
# `docker-compose` does not run.
missing=""
command -v dockerd >/dev/null 2>&1 || engine_ok || missing="$missing docker.io"
compose_v1_ok || missing="$missing docker-compose"
if [ -n "$missing" ]; then
  say "installing from Debian:$missing"
  apt-get update -qq
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

install_compose_v2() {
  local mirror tmp
  mirror=${COMPOSE_V2_MIRROR:-$(debian_mirror)}
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064  # expand $tmp now
  trap "rm -rf '$tmp'" RETURN
  say "installing the Compose v2 plugin from Debian trixie ($COMPOSE_V2_DEB)"
  if curl -fsSL --retry 3 -o "$tmp/$COMPOSE_V2_DEB" \
    "$mirror/pool/main/d/docker-compose/$COMPOSE_V2_DEB" 2>/dev/null &&
    echo "$COMPOSE_V2_SHA256  $tmp/$COMPOSE_V2_DEB" | sha256sum -c --quiet -; then
    :
  else
    # Not in the pool any more (or a different checksum): ask apt for trixie's current
    # docker-compose, with a private source list and lists directory (the system's apt
    # configuration is left as it is).
    say "$COMPOSE_V2_DEB is not in $mirror's pool; asking apt for trixie's docker-compose"
    rm -f "$tmp"/*.deb
    mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
      >"$tmp/trixie.list"
    local apt_opts=(-o "Dir::Etc::SourceList=$tmp/trixie.list" -o "Dir::Etc::SourceParts=-"
      -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
      -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$tmp" && apt-get "${apt_opts[@]}" download -qq docker-compose)
    mv "$tmp"/docker-compose_*.deb "$tmp/$COMPOSE_V2_DEB" 2>/dev/null || true
  fi
  # Not `dpkg -i`: trixie's package has the same name as bookworm's v1 (`docker-compose`)
  # and would replace it, /usr/bin/docker-compose included. Only the plugin binary is
  # needed (static Go; Depends: libc6 >= 2.34, bookworm has 2.36): it goes where every
  # docker CLI looks for plugins, and v1 stays installed as the package.
  dpkg-deb -x "$tmp/$COMPOSE_V2_DEB" "$tmp/root"
  local plugin
  plugin=$(find "$tmp/root" -path '*cli-plugins/docker-compose' -type f | head -n1)
  [ -n "$plugin" ] || { say "no cli-plugins/docker-compose in $COMPOSE_V2_DEB"; return 1; }
  install -D -m 0755 "$plugin" /usr/libexec/docker/cli-plugins/docker-compose
}

if ! engine_ok; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not answer yet; waiting"
  else
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the engine outlives this script and the make that ran it.
    setsid "$(command -v dockerd)" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq "$DOCKERD_WAIT_SECONDS"); do
    engine_ok && break
    sleep 1
  done
  if ! engine_ok; then
    say "dockerd did not answer within ${DOCKERD_WAIT_SECONDS}s; the end of $DOCKERD_LOG:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi

compose_v2_ok || install_compose_v2
compose_v1_ok || { say "docker-compose (v1) does not run"; exit 1; }
compose_v2_ok || { say "\`docker compose version\` still fails after installing the plugin"; exit 1; }
