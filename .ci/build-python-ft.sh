#!/usr/bin/env bash
# Build (once) a free-threaded CPython 3.13 from the source Debian ships, cached
# outside the checkout.  Prints the interpreter's path on its last line.
#   HARNESS_FT_PREFIX  install prefix (default /var/cache/harness/cpython-3.13t)
set -euo pipefail
prefix="${HARNESS_FT_PREFIX:-/var/cache/harness/cpython-3.13t}"
py="$prefix/bin/python3.13t"
if [ -x "$py" ] && "$py" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") else 1)'; then
  echo "$py"; exit 0
fi
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
apt-get install -y -qq build-essential zlib1g-dev libffi-dev libssl-dev liblzma-dev libbz2-dev libsqlite3-dev xz-utils >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source --download-only python3.13 >&2
tar xf python3.13_*.orig.tar.xz
cd Python-3.13*/
./configure --disable-gil --prefix="$prefix" --without-ensurepip >&2
make -j"$(nproc)" >&2
make altinstall >&2
"$py" -c 'import sys, sysconfig; assert sysconfig.get_config_var("Py_GIL_DISABLED"); assert not sys._is_gil_enabled()'
echo "$py"
