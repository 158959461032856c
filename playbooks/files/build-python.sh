#!/usr/bin/env bash
# Build (once) a CPython into PREFIX, from Debian's source package, a source tarball
# file, or a URL; cached by the source's sha256 and the configure flags.
#
#   build-python.sh [--source debian|tarball|url] [--from FILE|URL] [--jobs N]
#                   [--archive OUT.tar.gz] VERSION PREFIX
#   build-python.sh --deps                      # the Debian packages a build needs
#   build-python.sh --missing                   # those of them not installed here
#   build-python.sh --check [--source ...] VERSION PREFIX   # exit 0: cached, 10: to build
#
# VERSION is MAJOR.MINOR with a "t" for the free-threaded build (3.13, 3.13t, 3.14t).
# PREFIX/.harness-build.json is the stamp: version, kind, source, source_sha256,
# flags, python. A PREFIX whose stamp has the same source_sha256 and flags, and
# whose interpreter verifies, is not built again. The interpreter is verified
# (sys.version, sysconfig Py_GIL_DISABLED, sys._is_gil_enabled() under PYTHON_GIL=0).
# --archive writes the installed tree (without the test suite) as a .tar.gz, once
# per stamp. The last line on stdout is a JSON object: the stamp plus "built"
# (true when this run compiled) and "archive". Build output goes to stderr.
# Needs: bash, a C toolchain, make, tar, sha256sum; apt-get for --source debian;
# curl or wget for --source url. Installs nothing (the playbook or CI does).
set -euo pipefail

DEPS="build-essential zlib1g-dev libffi-dev libssl-dev liblzma-dev libbz2-dev libsqlite3-dev xz-utils"
source_kind=debian
from=""
archive=""
check=false
jobs="$(nproc 2>/dev/null || echo 2)"
while [ $# -gt 0 ]; do
  case "$1" in
    --deps) echo "$DEPS"; exit 0 ;;
    --missing)  # the build packages dpkg does not report installed (all without dpkg)
      for p in $DEPS; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || printf '%s ' "$p"
      done; echo; exit 0 ;;
    --check) check=true; shift ;;
    --source) source_kind="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --archive) archive="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --) shift; break ;;
    -*) echo "build-python.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: build-python.sh [options] VERSION PREFIX" >&2; exit 2; }
version="$1"
prefix="$2"
case "$version" in
  [0-9].[0-9]|[0-9].[0-9][0-9]) kind=standard; mm="$version" ;;
  [0-9].[0-9]t|[0-9].[0-9][0-9]t) kind=free-threaded; mm="${version%t}" ;;
  *) echo "build-python.sh: VERSION must look like 3.13 or 3.13t, not $version" >&2; exit 2 ;;
esac
case "$prefix" in /*) ;; *) echo "build-python.sh: PREFIX must be absolute" >&2; exit 2 ;; esac
flags="--prefix=$prefix --without-ensurepip"
[ "$kind" = free-threaded ] && flags="--disable-gil $flags"
exe="python$mm"
[ "$kind" = free-threaded ] && exe="python${mm}t"
py="$prefix/bin/$exe"
stamp="$prefix/.harness-build.json"

# The interpreter's own account of itself, as JSON: fails unless it is the build asked for.
verify() {
  PYTHON_GIL=0 "$py" -I -c '
import json, sys, sysconfig
kind, mm = sys.argv[1], sys.argv[2]
ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
ok = ("%d.%d" % sys.version_info[:2] == mm and ft == (kind == "free-threaded")
      and (not ft or not gil))
print(json.dumps({"sys_version": sys.version, "py_gil_disabled": ft,
                  "gil_enabled_under_python_gil_0": gil,
                  "config_args": sysconfig.get_config_var("CONFIG_ARGS")}))
sys.exit(0 if ok else 1)' "$kind" "$mm"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. The source: its tarball's sha256 (known before downloading for debian).
pkg="python$mm"
case "$source_kind" in
  debian)
    if ! apt-cache showsrc "$pkg" 2>/dev/null | grep -q '^Package:'; then
      echo "build-python.sh: no Debian source package $pkg in this host's deb-src lists" >&2
      exit 3
    fi
    orig_line="$(apt-cache showsrc --only-source "$pkg" | awk '/^Checksums-Sha256:/{c=1;next} /^[^ ]/{c=0} c && $3 ~ /orig\.tar\.(xz|gz)$/ {print $1, $3; exit}')"
    sha="${orig_line%% *}"
    source_desc="debian:${orig_line##* }"
    ;;
  tarball)
    [ -f "$from" ] || { echo "build-python.sh: no source tarball at $from" >&2; exit 3; }
    sha="$(sha256sum "$from" | cut -d' ' -f1)"
    source_desc="tarball:$(basename "$from")"
    ;;
  url)
    [ -n "$from" ] || { echo "build-python.sh: --source url needs --from URL" >&2; exit 2; }
    if command -v curl >/dev/null; then curl -fsSL -o "$work/src.tar" "$from" >&2
    else wget -q -O "$work/src.tar" "$from" >&2; fi
    sha="$(sha256sum "$work/src.tar" | cut -d' ' -f1)"
    source_desc="url:$from"
    ;;
  *) echo "build-python.sh: --source must be debian, tarball or url" >&2; exit 2 ;;
esac
[ -n "$sha" ] || { echo "build-python.sh: could not tell the source's checksum" >&2; exit 3; }

stamp_json() {
  printf '{"version": "%s", "kind": "%s", "source": "%s", "source_sha256": "%s", "flags": "%s", "python": "%s"}' \
    "$version" "$kind" "$source_desc" "$sha" "$flags" "$py"
}

# 2. The cache: same source checksum and flags, and the interpreter verifies.
built=false
cached=false
if [ -f "$stamp" ] && [ -x "$py" ] \
   && grep -q "\"source_sha256\": \"$sha\"" "$stamp" && grep -q "\"flags\": \"$flags\"" "$stamp" \
   && verify >/dev/null; then
  cached=true
fi
# A tree built before stamps existed (.ci/build-python-ft.sh): adopted when it verifies,
# was configured with exactly these flags and its version is the source's.
if [ "$cached" = false ] && [ ! -f "$stamp" ] && [ -x "$py" ] && info="$(verify 2>/dev/null)"; then
  want_args="$(printf "'%s' " $flags)"
  src_ver="$(printf '%s' "$source_desc" | grep -o "$mm\.[0-9][0-9]*" | head -n 1 || true)"
  if printf '%s' "$info" | grep -qF "\"config_args\": \"${want_args% }\"" \
     && [ -n "$src_ver" ] && printf '%s' "$info" | grep -qF "\"sys_version\": \"$src_ver "; then
    stamp_json > "$stamp"
    cached=true
  fi
fi

if [ "$check" = true ]; then
  if [ "$cached" = true ]; then echo cached; exit 0; fi
  echo "to build"; exit 10
fi

# 3. Build and install.
if [ "$cached" = false ]; then
  cd "$work"
  case "$source_kind" in
    debian) apt-get source --download-only "$pkg" >&2
            tarball="$(ls "$work"/"${pkg}"_*.orig.tar.* | grep -v '\.asc$' | head -n 1)"
            got="$(sha256sum "$tarball" | cut -d' ' -f1)"
            [ "$got" = "$sha" ] || { echo "build-python.sh: $tarball: sha256 $got, expected $sha" >&2; exit 3; } ;;
    tarball) tarball="$from" ;;
    url) tarball="$work/src.tar" ;;
  esac
  mkdir src
  tar -xf "$tarball" -C src --strip-components=1
  cd src
  # shellcheck disable=SC2086  # flags is a constant list of words built above
  ./configure $flags >&2
  make -j"$jobs" >&2
  # Installed beside, then swapped in: a process using the old tree keeps working.
  mkdir -p "$(dirname "$prefix")"
  dest="$prefix.new.$$"
  rm -rf "$dest"
  make altinstall DESTDIR="$dest" >&2
  stamp_json > "$dest$prefix/.harness-build.json"
  if [ -e "$prefix" ]; then mv "$prefix" "$prefix.old.$$"; fi
  mv "$dest$prefix" "$prefix"
  rm -rf "$dest" "$prefix.old.$$"
  verify >&2 || { echo "build-python.sh: $py does not verify as a $kind $mm" >&2; exit 4; }
  built=true
  cd /
fi

# 4. The archive the playbook distributes (the tree without its test suite).
archived=false
if [ -n "$archive" ]; then
  archive_stamp="$archive.stamp"
  if ! { [ -f "$archive" ] && [ -f "$archive_stamp" ] && cmp -s "$stamp" "$archive_stamp"; }; then
    mkdir -p "$(dirname "$archive")"
    tar -C "$prefix" --exclude="./lib/python$mm*/test" -czf "$archive.tmp" .
    mv -f "$archive.tmp" "$archive"
    cp "$stamp" "$archive_stamp"
    archived=true
  fi
fi

checked="$(verify)"
printf '{"stamp": %s, "built": %s, "archive": "%s", "archived": %s, "verified": %s}\n' \
  "$(cat "$stamp")" "$built" "$archive" "$archived" "$checked"
