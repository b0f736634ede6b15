# Sourced by scripts/ensure-docker.sh and scripts/base-image.sh.
# The Debian mirror this machine's apt uses (deb822 or one-line sources), without a
# trailing slash; deb.debian.org when apt names none.
debian_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' |
      grep -E '/debian/?$' | head -n1 || true)
  fi
  uri=${uri:-http://deb.debian.org/debian}
  echo "${uri%/}"
}
