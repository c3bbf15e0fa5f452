#!/usr/bin/env bash
# Installs the OpenID provider the security tests start (tests/oidc/provider.mjs): the npm
# package oidc-provider, pinned with its lock file (npm ci). Idempotent: a second run with the
# same lock file does nothing. Nothing is written outside this folder but npm's own cache.
set -euo pipefail
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.installed-package-lock.json 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-package-lock.json
fi
echo "setup.sh: oidc-provider $(node -p 'require("oidc-provider/package.json").version') in tests/oidc"
