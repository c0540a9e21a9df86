#!/usr/bin/env bash
# Install the Debian packages the suite needs, if missing: PostGIS for the production store, GDAL's
# command-line clients, QGIS (python3-qgis, for the system python3), Chromium and Mosquitto (the MQTT broker
# and its clients) for end-to-end tests.
# Needs root (or sudo) on Debian 12.
set -euo pipefail
need=()
dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s python3-qgis >/dev/null 2>&1 || need+=(python3-qgis)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# The viewer's Chinese labels and UI: drawn by the browser from this font, Latin label glyphs cut from it.
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${need[*]}" >&2
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" >&2
