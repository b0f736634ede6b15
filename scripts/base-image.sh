#!/usr/bin/env bash
# Make sure the base image of our Dockerfile, debian:bookworm-slim, is in the local image
# store. No registry is reachable here, so when it is missing it is built from Debian's
# mirror: `debootstrap --variant=minbase bookworm` + `docker import` (~30 s), slimmed the
# way Debian's official -slim image is (no man pages, docs or translations; apt keeps no
# caches; security updates in the sources). Idempotent: quick when the image is there.
# Needs root to build (debootstrap); the Docker engine must be up (scripts/ensure-docker.sh).
set -euo pipefail

IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
SUITE=bookworm

say() { echo "base-image: $*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "$IMAGE is not in the local image store and no registry is reachable: build it as root"
  say "(sudo $0), or load it from elsewhere (docker load -i debian-bookworm-slim.tar)."
  exit 1
fi

# shellcheck source=scripts/lib/debian-mirror.sh
source "$(dirname "$0")/lib/debian-mirror.sh"
MIRROR=${DEBIAN_MIRROR:-$(debian_mirror)}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

start=$SECONDS
work=$(mktemp -d /var/tmp/base-image.XXXXXX)
rootfs=$work/rootfs
cleanup() {
  # debootstrap mounts /proc and /sys in the chroot; never rm -rf through a mount.
  local m
  awk -v r="$rootfs" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say "building $IMAGE: debootstrap --variant=minbase $SUITE from $MIRROR"
if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  say "debootstrap failed; the end of its log:"
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
fi

# What Debian's official -slim image does: no docs, man pages or translations from
# packages installed later (copyright files stay), apt without caches or translations.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Already-installed docs and the package lists debootstrap fetched.
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/tmp/* "$rootfs"/root/.bash_history
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

tar --numeric-owner --xattrs -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' \
  --exclude='./sys/*' -cf - . |
  docker import --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR ($(date -u +%Y-%m-%d))" \
    - "$IMAGE" >/dev/null
say "$IMAGE built in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" |
  awk '{printf "%.0f MB", $1 / 1e6}'))"
