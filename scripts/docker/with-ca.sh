#!/bin/sh
# with-ca COMMAND...: run COMMAND (pip, in the image builds) trusting the extra CA bundle
# given as the BuildKit secret `ca` (a TLS-inspecting proxy). The bundle is joined to
# Debian's in /run/ca, a tmpfs the RUN mounts, so it never lands in a layer.
set -eu
if [ -s /run/secrets/ca ]; then
  cat /etc/ssl/certs/ca-certificates.crt /run/secrets/ca >/run/ca/bundle.pem
  export PIP_CERT=/run/ca/bundle.pem SSL_CERT_FILE=/run/ca/bundle.pem
fi
exec "$@"
