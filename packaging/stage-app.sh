#!/usr/bin/env bash
# Stages the program as it runs on a host, into DIR: the compiled JavaScript, package.json and the
# production node_modules, with better-sqlite3 compiled for NODE's ABI. The Debian package and both
# builds of the container image (the Dockerfile's compiling stage and its prebuilt target, from
# `npm run package:app`) ship this tree.
#   usage: packaging/stage-app.sh DIR [NODE]   (NODE: default the node on PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:?usage: stage-app.sh DIR [NODE]}
node_bin=$(readlink -f "${2:-$(command -v node)}")
cd "$root"
abi=$("$node_bin" -p process.versions.modules)
arch=$(uname -m)
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "stage-app: $node_bin is Node.js $node_major; gpuhost needs 20 or later" >&2
  exit 1
fi
rm -rf "$lib"
mkdir -p "$lib"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
[ -f dist/cli.js ] || { echo "stage-app: no dist/: run npm run build first" >&2; exit 1; }

# The program: compiled JS and production dependencies, installed from the lockfile without
# running install scripts (prebuild-install would fetch a binary from GitHub), then the one native
# module compiled against NODE's own headers (node-gyp's --nodedir: no download).
cp -r dist proto package.json package-lock.json "$lib/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
sqlite_version=$(node -p 'require("./package-lock.json").packages["node_modules/better-sqlite3"].version')
cache="$root/build/cache/better-sqlite3-$sqlite_version-abi$abi-$arch.node"
if [ ! -f "$cache" ]; then
  node_prefix=$(dirname "$(dirname "$node_bin")")
  gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  (cd "$lib/node_modules/better-sqlite3" &&
    PATH="$(dirname "$node_bin"):$PATH" "$node_bin" "$gyp" rebuild --release --nodedir="$node_prefix" \
      -j "$(nproc)" --loglevel=error >"$log" 2>&1) || {
    tail -n 30 "$log" >&2
    exit 1
  }
  install -D -m 0644 "$lib/node_modules/better-sqlite3/build/Release/better_sqlite3.node" "$cache"
fi
sqlite="$lib/node_modules/better-sqlite3"
rm -rf "$sqlite/build" "$sqlite/deps" "$sqlite/src"
install -D -m 0644 "$cache" "$sqlite/build/Release/better_sqlite3.node"
strip --strip-unneeded "$sqlite/build/Release/better_sqlite3.node"
rm "$lib/package-lock.json"
# what the runtime never reads: type declarations, source maps, docs and test folders
find "$lib" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \
  -o -name '*.markdown' -o -name '*.html' -o -name '.*' \) -type f -delete
find "$lib/node_modules" -depth -type d \( -name test -o -name tests -o -name docs -o -name example \
  -o -name examples -o -name .husky \) -exec rm -rf {} +
find "$lib/node_modules" -type f -name '*.sh' -delete
