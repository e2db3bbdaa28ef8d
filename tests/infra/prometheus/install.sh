#!/usr/bin/env bash
# Unpacks Debian's prometheus package (the server and promtool) into the
# directory given, when it is not there yet. The package is downloaded and
# extracted rather than installed: `apt-get install` would start a
# system-wide service on :9090 that outlives the tests and needs root,
# while the tests only run the two binaries, each on a config of their
# own. Both binaries need only libc.
set -euo pipefail

dest=${1:?usage: install.sh DIR}
if [ -x "$dest/usr/bin/promtool" ] && [ -x "$dest/usr/bin/prometheus" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# A fresh machine may not have the package lists yet.
apt-get download prometheus 2>/dev/null || { $SUDO apt-get update -qq && apt-get download prometheus; }
rm -rf "$dest.tmp"
dpkg -x prometheus_*.deb "$dest.tmp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
"$dest/usr/bin/promtool" --version | head -1
