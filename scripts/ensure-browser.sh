#!/usr/bin/env bash
# Makes what the dashboard's browser test needs (integration-tests/browser):
#   1. Debian's chromium at /usr/bin/chromium (installed with apt-get if
#      absent; Playwright's own browser downloads cannot work offline);
#   2. integration-tests/browser/node_modules, from package-lock.json with
#      `npm ci`, when it is missing or older than the lock file.
# Idempotent; prints nothing when there is nothing to do.
set -euo pipefail

cd "$(dirname "$0")/.."
dir=integration-tests/browser
stamp=$dir/node_modules/.installed

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-browser: /usr/bin/chromium is absent; installing Debian's chromium" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-browser: npm is absent; installing Debian's nodejs and npm" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi

if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
  exit 0
fi
echo "ensure-browser: installing $dir/node_modules (npm ci)" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
touch "$stamp"
