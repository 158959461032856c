#!/usr/bin/env bash
# Build (once) a free-threaded CPython 3.13 from the source Debian ships, cached
# outside the checkout.  Prints the interpreter's path on its last line.
#   HARNESS_FT_PREFIX  install prefix (default /var/cache/harness/cpython-3.13t)
set -euo pipefail
exec bash "$(dirname "$0")/build-python.sh" 3.13t "${HARNESS_FT_PREFIX:-/var/cache/harness/cpython-3.13t}"
