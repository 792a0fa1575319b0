#!/usr/bin/env bash
# Set-up and checks for o365-migrate on Debian/Ubuntu, from nothing:
#   scripts/dev.sh demo   install, then run the main job on the built-in sample mailbox
#   scripts/dev.sh test   install with test extras and the test servers, then run every test
#   scripts/dev.sh lint   ruff and mypy
# It reuses .venv when present. As root it installs missing Debian packages with apt-get;
# otherwise it names the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# WeasyPrint (PDF reports) runs on Pango and HarfBuzz; a font with åäö for the PDFs.
DEBIAN_PACKAGES_BASE=(python3 python3-venv python3-dev libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b
                      libharfbuzz-subset0 fonts-dejavu-core)
# Distributed batches' tests: a Redis broker and a PostgreSQL journal, started by the tests on loopback.
# chromium: the report tests lay the HTML out in headless Chromium (tests/reporting/test_browser.py).
DEBIAN_PACKAGES_TEST=(dovecot-imapd dovecot-pop3d redis-server postgresql chromium)

missing_debs() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

need_debs() {
  command -v dpkg-query >/dev/null || return 0  # not Debian: the user installs by hand
  local missing
  missing=$(missing_debs "$@")
  [ -z "$missing" ] && return 0
  # python3 from pyenv or similar counts as present when it can make a venv
  if [ "$missing" = "python3 python3-venv python3-dev" ] && python3 -m venv --help >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: $missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "missing Debian packages; run: sudo apt-get install -y $missing" >&2
    exit 3
  fi
}

venv() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".${extras}"
  # The bytecode a regular pip install compiles: an editable one leaves it to the first import, which
  # never writes it where PYTHONDONTWRITEBYTECODE is set, and each run would compile the package again.
  "$VENV/bin/python" -m compileall -q migrate >/dev/null
}

case "${1:-}" in
  demo)
    need_debs "${DEBIAN_PACKAGES_BASE[@]}"
    venv ""
    "$VENV/bin/o365-migrate" demo --dir "${DEMO_DIR:-o365-migrate-demo}"
    ;;
  test)
    need_debs "${DEBIAN_PACKAGES_BASE[@]}"
    need_debs "${DEBIAN_PACKAGES_TEST[@]}"
    venv "[test]"
    shift
    "$VENV/bin/python" -m pytest "$@"
    ;;
  lint)
    venv "[test]"
    "$VENV/bin/ruff" check migrate tests bench
    "$VENV/bin/mypy" migrate
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test|lint [pytest args]" >&2
    exit 2
    ;;
esac
