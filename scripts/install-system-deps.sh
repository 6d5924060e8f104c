#!/usr/bin/env bash
# Installs the Debian packages the examples and tests need, when missing.
# As root it installs them with apt-get; otherwise it lists what is missing and fails.
set -euo pipefail

packages=(
  clang lld wasi-libc libclang-rt-dev-wasm32   # C plugins -> wasm32-wasi
  nodejs npm                                   # AssemblyScript plugins (npm: assemblyscript, @extism/as-pdk)
  postgresql                                   # tests: private clusters via initdb/pg_ctl
  mariadb-server                               # tests: MySQL connections (or a private mariadbd)
  openssh-server                               # tests: a private sshd for the ssh executor
  mosquitto mosquitto-clients                  # tests: a private MQTT broker for the fleet
  nats-server                                  # tests: a clustered MQTT broker (NATS with JetStream)
  wrk                                          # benchmarks: HTTP load
  chromium chromium-driver                     # console tests: a real headless browser (Playwright)
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    # node/npm may come from elsewhere than Debian; accept them when on PATH
    case "$pkg" in
      nodejs) command -v node >/dev/null && continue ;;
      npm) command -v npm >/dev/null && continue ;;
    esac
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
