#!/usr/bin/env bash
# Make sure R and the R packages the models need are installed (Debian packages).
# As root it installs them with apt; otherwise it prints the command to run.
set -euo pipefail

DEBIAN_PACKAGES="r-base-core r-cran-recipes r-cran-data.table r-cran-jsonlite"
R_PACKAGES='c("recipes", "data.table", "jsonlite")'

have_r() {
  command -v Rscript >/dev/null 2>&1 &&
    TZ=UTC Rscript --vanilla -e "quit(status = !all(vapply($R_PACKAGES, requireNamespace, logical(1), quietly = TRUE)))" >/dev/null 2>&1
}

if have_r; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "R or its packages are missing. Install them (Debian/Ubuntu) and run make again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $DEBIAN_PACKAGES" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "R or its packages are missing and this is not a Debian-like system: install R >= 4.2" >&2
  echo "with the packages recipes, data.table and jsonlite, then run make again." >&2
  exit 1
fi
echo "installing R from Debian: $DEBIAN_PACKAGES" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $DEBIAN_PACKAGES >/dev/null
have_r || { echo "R was installed but its packages still do not load" >&2; exit 1; }
