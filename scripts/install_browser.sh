#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for scripts/check_pages.py, only when missing
# (on this project's machines: 131 packages, 35 s, 350 MB, plus apt-get update); as root, or
# through sudo where there is one.
# The system chromedriver matches the system chromium's version, so Selenium never has to
# download a driver.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "browser: $(chromium --version 2>/dev/null), $(chromedriver --version | cut -d' ' -f1-2)"
  exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
echo "browser: $(chromium --version 2>/dev/null), $(chromedriver --version | cut -d' ' -f1-2)"
