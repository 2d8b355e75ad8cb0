#!/usr/bin/env bash
# Installs what the integration tests need beyond npm: the CNCF distribution registry, skopeo, and
# Chromium (the browser tests drive Debian's /usr/bin/chromium with playwright-core; nothing is
# downloaded by playwright). Debian/Ubuntu: apt-get (as root, or through sudo). Elsewhere: says
# what to install. Running it again installs nothing that is there.
set -euo pipefail

have_registry() { command -v docker-registry >/dev/null 2>&1 || command -v registry >/dev/null 2>&1; }
have_skopeo() { command -v skopeo >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; }
have_chromium() { [ -x /usr/bin/chromium ]; }

if have_registry && have_skopeo && have_chromium; then
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "setup: need root (or sudo) to run: apt-get install -y docker-registry skopeo openssl chromium" >&2
      exit 1
    fi
  fi
  echo "setup: installing docker-registry, skopeo and chromium with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry skopeo openssl chromium >/dev/null
else
  echo "setup: install the CNCF distribution registry (\`registry\` or Debian's \`docker-registry\`), skopeo and chromium (at /usr/bin/chromium), then rerun" >&2
  exit 1
fi

have_registry && have_skopeo && have_chromium
