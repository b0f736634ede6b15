#!/usr/bin/env bash
# Make sure podman can run Kubernetes YAML here (`podman kube play`): Debian's podman 4.3,
# catatonit (its pause image's init), runc as the runtime (crun fails here: "cgroups in
# hybrid mode not supported") and no default ulimits (setrlimit is refused here).
# As root it installs and configures what is missing; otherwise it says what to do.
set -euo pipefail

say() { echo "ensure-podman: $*" >&2; }
CONF=/etc/containers/containers.conf

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] || missing="$missing catatonit"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
configured=1
grep -qs '^runtime = "runc"' "$CONF" && grep -qs '^default_ulimits = \[\]' "$CONF" || configured=0

if [ -z "$missing" ] && [ "$configured" -eq 1 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  [ -n "$missing" ] && say "missing:$missing (sudo apt-get install -y --no-install-recommends$missing)"
  [ "$configured" -eq 1 ] || say "$CONF needs [engine] runtime = \"runc\" and [containers] default_ulimits = []"
  say "or run this script as root: it does all of it"
  exit 1
fi
if [ -n "$missing" ]; then
  say "installing from Debian:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$configured" -eq 0 ]; then
  [ -e "$CONF" ] && [ ! -e "$CONF.agi-credit.bak" ] && cp "$CONF" "$CONF.agi-credit.bak"
  mkdir -p "$(dirname "$CONF")"
  cat >"$CONF" <<'CONF'
# Written by agi-credit's scripts/ensure-podman.sh (the previous file: *.agi-credit.bak).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
  say "wrote $CONF"
fi
