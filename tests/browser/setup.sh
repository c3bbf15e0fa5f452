#!/usr/bin/env bash
# Installs what tests/e2e/test_ohif.py needs beside Debian's chromium (which .ci/run installs):
# playwright-core (npm ci, from package-lock.json) and the prebuilt OHIF Viewer, the npm package
# pinned in package.json's "ohif" field, checked against its pinned integrity and unpacked into
# .ohif/app-<version>/ (git-ignored). Idempotent: a second run with everything in place does
# nothing but check. Nothing is written outside this folder but npm's own cache.
set -euo pipefail
cd "$(dirname "$0")"

if ! cmp -s package-lock.json node_modules/.installed-package-lock.json 2>/dev/null; then
    # playwright-core never downloads a browser; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD is belt and braces.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-package-lock.json
fi

package=$(node -p 'require("./package.json").ohif.package')
version=$(node -p 'require("./package.json").ohif.version')
integrity=$(node -p 'require("./package.json").ohif.integrity')
target=".ohif/app-${version}"
if [ ! -f "${target}/package/dist/index.html" ] || [ ! -f "${target}/.complete" ]; then
    rm -rf "${target}" ".ohif/tmp-${version}"
    mkdir -p ".ohif/tmp-${version}"
    tarball=$(npm pack "${package}@${version}" --pack-destination ".ohif/tmp-${version}" \
        --loglevel=error | tail -n 1)
    actual="sha512-$(openssl dgst -sha512 -binary ".ohif/tmp-${version}/${tarball}" | base64 -w0)"
    if [ "${actual}" != "${integrity}" ]; then
        echo "setup.sh: ${package}@${version} has integrity ${actual}, expected ${integrity}" >&2
        exit 1
    fi
    tar -xzf ".ohif/tmp-${version}/${tarball}" -C ".ohif/tmp-${version}"
    rm -f ".ohif/tmp-${version}/${tarball}"
    touch ".ohif/tmp-${version}/.complete"
    mv ".ohif/tmp-${version}" "${target}"
fi
echo "setup.sh: playwright-core $(node -p 'require("playwright-core/package.json").version'), ${package}@${version} in tests/browser/${target}"
