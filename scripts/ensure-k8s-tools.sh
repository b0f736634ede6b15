#!/usr/bin/env bash
# Make sure the Kubernetes command-line tools named as arguments (kustomize, kind, kubectl)
# are on PATH or in DEST (default .venv/bin). Missing ones come from Debian trixie's
# packages: static Go binaries that run on bookworm (they need libc6 >= 2.34), fetched by
# apt with a private configuration, so the archive's signature is checked with this
# machine's keyring and nothing of the system's apt state changes. No root is needed.
#   scripts/ensure-k8s-tools.sh kustomize            # make test renders k8s/ with it
#   scripts/ensure-k8s-tools.sh kind kubectl         # make kind-e2e
# kustomize must know the kustomization syntax of k8s/ (`labels`, `patches`: v4.1 and later;
# Debian's build reports its version as "(devel)", so it is asked to build one).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/debian-mirror.sh
. scripts/lib/debian-mirror.sh

say() { echo "ensure-k8s-tools: $*" >&2; }
DEST=${DEST:-.venv/bin}
SUITE=${DEBIAN_TOOLS_SUITE:-trixie}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

usable() {  # the tool on PATH or in DEST, at a version this project needs
  local tool=$1 path
  path=$(PATH="$DEST:$PATH" command -v "$tool" 2>/dev/null) || return 1
  case $tool in
    kustomize) kustomize_is_modern "$path" ;;
    *) "$path" version --client >/dev/null 2>&1 || "$path" version >/dev/null 2>&1 ;;
  esac
}

kustomize_is_modern() {
  local dir
  dir=$(mktemp -d)
  printf 'kind: ConfigMap\napiVersion: v1\nmetadata: {name: probe}\n' >"$dir/cm.yaml"
  printf 'resources: [cm.yaml]\nlabels: [{pairs: {probe: "yes"}}]\npatches: []\n' \
    >"$dir/kustomization.yaml"
  "$1" build "$dir" 2>/dev/null | grep -q 'probe: "yes"'
  local ok=$?
  rm -rf "$dir"
  return $ok
}

missing=()
for tool in "$@"; do
  case $tool in
    kustomize | kind | kubectl) usable "$tool" || missing+=("$tool") ;;
    *) say "unknown tool $tool (kustomize, kind or kubectl)"; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null || [ ! -r "$KEYRING" ]; then
  say "missing: ${missing[*]}, and no apt with Debian's keyring to fetch them."
  say "Install them (kustomize v5: https://kubectl.docs.kubernetes.io/installation/kustomize/)"
  say "or put them in $DEST."
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{lists/partial,cache/archives/partial,debs}
echo "deb [signed-by=$KEYRING] $(debian_mirror) $SUITE main" >"$work/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)"
)
say "fetching ${missing[*]} from Debian $SUITE"
if ! apt-get "${apt_private[@]}" -qq update >"$work/log" 2>&1 ||
  ! (cd "$work/debs" && apt-get "${apt_private[@]}" -qq download "${missing[@]}") >>"$work/log" 2>&1; then
  cat "$work/log" >&2
  say "could not fetch ${missing[*]} from $(debian_mirror) ($SUITE); install them by hand."
  exit 1
fi
mkdir -p "$DEST"
for tool in "${missing[@]}"; do
  deb=$(ls "$work/debs/${tool}"_*.deb)
  dpkg-deb -x "$deb" "$work/root"
  install -m 0755 "$work/root/usr/bin/$tool" "$DEST/$tool"
  say "$DEST/$tool from $(basename "$deb")"
done
