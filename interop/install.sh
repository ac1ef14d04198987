#!/usr/bin/env bash
# Installs what the interop tests need on a Debian 12 machine: strongSwan's charon with the
# kernel-libipsec plugin (userspace ESP), swanctl, tshark and iproute2. Idempotent: when every
# package is already installed it changes nothing and does not touch the network.
# Usage (as root): interop/install.sh
set -euo pipefail

pkgs=(
  strongswan-charon
  strongswan-swanctl
  libcharon-extra-plugins
  libstrongswan-extra-plugins
  libstrongswan-standard-plugins # openssl plugin; only a Recommends of libstrongswan
  tshark
  iproute2
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "interop/install.sh: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Debian packages do not start charon here (no systemd in CI containers); the tests start their
# own charon per network namespace. Report what is installed.
for p in "${pkgs[@]}"; do
  printf '%s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
done
test -x /usr/lib/ipsec/charon
for so in kernel-libipsec kernel-netlink socket-default vici openssl kdf; do
  test -f "/usr/lib/ipsec/plugins/libstrongswan-$so.so" || { echo "missing charon plugin $so" >&2; exit 1; }
done
command -v swanctl tshark ip >/dev/null
