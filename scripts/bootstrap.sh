#!/usr/bin/env bash
# Installs what wgpt needs on a fresh Debian machine with Node 20 and npm, and nothing that is already there:
# pnpm, the workspace's dependencies (from the lockfile), and for WebGPU without a GPU, Debian's chromium
# (it ships SwiftShader's Vulkan driver) and the Vulkan loader. Quiet when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
say() { echo "[bootstrap] $*" >&2; }

if ! command -v pnpm >/dev/null 2>&1; then
  say "installing pnpm@$PNPM_VERSION with npm"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 ||
    { say "npm install -g pnpm@$PNPM_VERSION failed; install pnpm and retry"; exit 1; }
fi

# Reinstall when the lockfile is newer than the last install.
stamp=node_modules/.wgpt-installed
if [ ! -f "$stamp" ] || [ pnpm-lock.yaml -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  say "pnpm install --frozen-lockfile"
  pnpm install --frozen-lockfile --reporter=silent
  touch "$stamp"
fi

# SwiftShader (inside Debian's chromium) + the Vulkan loader: WebGPU on machines without a GPU, and browser tests.
# Debian's python3-torch (CPU): the independent PyTorch reference the GPT-2 tests regenerate their fixture with.
need=()
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 ' || need+=(libvulkan1)
if [ "${1:-}" = --with-torch ] && ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  need+=(python3-torch libopenblas0-pthread)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    say "missing: ${need[*]}. WebGPU on a machine without a GPU needs them: sudo apt-get install ${need[*]}"
  fi
fi
