#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the browser test, when it
# is missing. The test never downloads a browser build of its own: only the
# distribution's package is used, so it runs where only the package
# registries are reachable. Idempotent: a no-op when chromium and the fonts are installed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
# Text fonts come with chromium (fonts-liberation); DejaVu and Noto
# Color Emoji keep the screenshots free of empty boxes.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core fonts-noto-color-emoji >/dev/null
chromium --version 2>/dev/null  # Debian's wrapper prints a harmless shell warning on stderr
