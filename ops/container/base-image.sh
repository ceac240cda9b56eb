#!/usr/bin/env bash
# The base image `make container-test` builds on, made here because no container registry is
# reachable from the test machines: Debian bookworm (debootstrap --variant=minbase) from the
# Debian mirror apt already uses, imported with `podman import`, with a Python 3.11 the lock
# installs on. Debian's python3 is 3.11.2 and the lock needs 3.11.5 or later (soupsieve 4.x;
# python:3.11-slim, the Containerfile's default base, has the latest 3.11), so when the
# interpreter that runs `make` (PYTHON, as the Makefile's) is a newer CPython 3.11 installed
# elsewhere (pyenv, /usr/local), its standard library is copied in as /usr/local, where
# python:3.11-slim keeps its own; Debian's python3 then only brings the shared libraries it uses.
# When PYTHON is Debian's own, Debian's python3, python3-venv and python3-pip are the Python.
# Made once per Python: podman's image store keeps it between runs (about a minute;
# `podman rmi IMAGE` makes the next run make it again). Prints the image's name last.
#
#   PYTHON=python3.11 ops/container/base-image.sh [IMAGE]
#       (default localhost/demand-analytics-base:bookworm-py<version>)
#
# Needs root (debootstrap), podman and debootstrap (`make tools`).
set -euo pipefail
suite=bookworm
python=${PYTHON:-python3.11}
read -r version prefix < <("$python" -c 'import platform, sys; print(platform.python_version(), sys.base_prefix)') || {
  echo "error: PYTHON=$python does not run; name a CPython 3.11 (e.g. PYTHON=python3.11)" >&2
  exit 2
}
case "$version" in 3.11.*) ;; *) echo "error: PYTHON=$python is Python $version; the image needs 3.11" >&2; exit 2 ;; esac
image=${1:-localhost/demand-analytics-base:$suite-py$version}
[ "$(id -u)" = 0 ] || podman image exists "$image" || {
  echo "error: debootstrap needs root to make the base image $image; run this (make container-test) as root," \
       "or build on a registry's image: CONTAINER_BASE=python:3.11-slim make container-test" >&2
  exit 2
}

if podman image exists "$image"; then
  echo "base image $image: cached" >&2
  echo "$image"
  exit 0
fi

# The first Debian mirror in apt's sources that serves $suite (deb822 .sources files first,
# then the one-line format); deb.debian.org when there is none.
mirror_of() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$suite" '
      function flush() { if (uri != "" && index(" " suites " ", " " suite " ") && uri !~ /security/) { print uri; exit } uri = ""; suites = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { suites = $0; sub(/^Suites:[[:space:]]*/, "", suites) }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++;
      if ($(i + 1) == suite && $i !~ /security/) { print $i; exit } }' "$f"
  done
}
mirror=$(mirror_of | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "${TMPDIR:-/tmp}/base-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
packages=python3,ca-certificates,netbase,tzdata
[ "$prefix" != /usr ] || packages=$packages,python3-venv,python3-pip
echo "base image $image: debootstrap $suite from $mirror, Python $version from $prefix" >&2
start=$SECONDS
debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "error: debootstrap of $suite from $mirror failed (log above)" >&2
  exit 1
}
if [ "$prefix" != /usr ]; then
  # The interpreter, its shared library and standard library, without what was installed into it
  # (site-packages), its tests and static library; /usr/local/lib is on the loader's path (ldconfig).
  tar -C "$prefix" -c --exclude='lib/python3.11/site-packages/*' --exclude=lib/python3.11/test \
    --exclude='lib/python3.11/config-3.11-*/*.a' --exclude=lib/python3.11/idlelib --exclude=lib/python3.11/turtledemo \
    bin/python3.11 lib/python3.11 $(cd "$prefix" && ls lib/libpython3*.so* 2>/dev/null) | tar -C "$work/root/usr/local" -x
  ln -sf python3.11 "$work/root/usr/local/bin/python3"
  ln -sf python3.11 "$work/root/usr/local/bin/python"
  chroot "$work/root" /sbin/ldconfig
  chroot "$work/root" /usr/local/bin/python3 -c 'import ensurepip, sqlite3, ssl, venv' || {
    echo "error: the Python copied from $prefix does not run in the $suite image" >&2
    exit 1
  }
fi
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$image" > /dev/null
echo "base image $image: made in $((SECONDS - start)) s" >&2
echo "$image"
