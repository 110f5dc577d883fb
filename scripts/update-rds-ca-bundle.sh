#!/usr/bin/env bash
# Writes the RDS global CA bundle into the rotation function's source, where
# the package picks it up (terraform/database/lambda/rotation/ca-bundle.pem).
# The function trusts exactly this file to reach the TLS-only database. Run it
# once before the first real deploy with rotation, commit the file, and again
# when AWS announces a CA change. `orchestrator preflight` refuses a real
# deploy with rotation when the file is missing or holds no RDS certificate.
set -euo pipefail
cd "$(dirname "$0")/.."
url="https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
dest="terraform/database/lambda/rotation/ca-bundle.pem"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl -fsSL --proto '=https' --tlsv1.2 "$url" -o "$tmp"
count=$(grep -c 'BEGIN CERTIFICATE' "$tmp" || true)
[ "$count" -gt 0 ] || { echo "error: $url returned no certificate" >&2; exit 1; }
openssl storeutl -noout -certs "$tmp" >/dev/null
mv "$tmp" "$dest"
trap - EXIT
echo "wrote $dest ($count certificates)"
