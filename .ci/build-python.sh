#!/usr/bin/env bash
# Build (once) a CPython from the source Debian ships, cached outside the checkout,
# with playbooks/files/build-python.sh (the builder `harness provision` uses).
# Prints the interpreter's path on its last line.
#   .ci/build-python.sh VERSION [PREFIX]    VERSION: 3.13 or 3.13t;
#                                           PREFIX default /var/cache/harness/cpython-VERSION
set -euo pipefail
version="${1:?usage: .ci/build-python.sh VERSION [PREFIX]}"
prefix="${2:-/var/cache/harness/cpython-$version}"
builder="$(dirname "$0")/../playbooks/files/build-python.sh"
if ! bash "$builder" --check "$version" "$prefix" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  src_list=/etc/apt/sources.list.d/harness-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    cat > "$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -qq -o Dir::Etc::sourcelist="$src_list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2
  missing="$(bash "$builder" --missing)"
  # shellcheck disable=SC2086  # a list of package names
  if [ -n "${missing// /}" ]; then apt-get install -y -qq $missing >&2; fi
fi
bash "$builder" "$version" "$prefix" | tail -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["stamp"]["python"])'
