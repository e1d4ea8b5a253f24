#!/usr/bin/env bash
# Here (a machine with node_modules): packs node + dawn.node + the Vulkan loader into .gpu/ with the workspace's
# packing script (../shared/gpu/pack.sh, outside this repository: the device machine has none of them), and
# bundles the GPU entry points into .gpu/app/ (koffi stays out: only data-parallel ranks on one node map memory
# with it, and the bundles run one process). Then, on the GPU machine: bash tools/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash ../shared/gpu/pack.sh >/dev/null
for entry in bench-kernels stress train-gpt2 attn-tiles; do
  pnpm exec esbuild "tools/gpu/$entry.ts" --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --external:koffi --loader:.wgsl=text --log-level=warning --outfile=".gpu/app/$entry.mjs" \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
done
du -sh .gpu
