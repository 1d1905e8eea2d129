#!/usr/bin/env bash
# Builds build/gpuhost_VERSION_ARCH.deb with dpkg-deb: the compiled JavaScript, the production
# node_modules with better-sqlite3 compiled for the bundled Node.js, that Node.js binary, the
# systemd units, /etc/gpuhost/agent.yaml as a conffile and the maintainer scripts.
#   GPUHOST_DEB_NODE     the Node.js binary to bundle (default: the node running npm)
#   GPUHOST_DEB_VERSION  the package version (default: package.json's version)
#   GPUHOST_DEB_OUT      the output directory (default: build)
#   --no-build           package the dist/ already built (the tests, after npm test's build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/packaging/deb"
cd "$root"

node_bin=$(readlink -f "${GPUHOST_DEB_NODE:-$(command -v node)}")
version=${GPUHOST_DEB_VERSION:-$(node -p 'require("./package.json").version')}
arch=$(dpkg --print-architecture)
out=${GPUHOST_DEB_OUT:-$root/build}
started=$(date +%s)

[ "${1:-}" = --no-build ] || npm run -s build
stage=$(mktemp -d "${TMPDIR:-/tmp}/gpuhost-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/root"
lib="$pkg/usr/lib/gpuhost"
install -d "$lib/bin" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/gpuhost" \
  "$pkg/usr/share/doc/gpuhost" "$pkg/DEBIAN"

# The program, with better-sqlite3 compiled for the bundled Node, and that Node
"$root/packaging/stage-app.sh" "$lib" "$node_bin"
mkdir -p "$lib/bin"
install -m 0755 "$node_bin" "$lib/bin/node"
strip --strip-unneeded "$lib/bin/node"

# The command: resolves its own place, so the extracted tree runs where it lies
cat >"$pkg/usr/bin/gpuhost" <<'SH'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
exec "$here/../lib/gpuhost/bin/node" "$here/../lib/gpuhost/dist/cli.js" "$@"
SH
chmod 0755 "$pkg/usr/bin/gpuhost"

for unit in systemd/*.service; do
  sed -e 's|/usr/bin/node /opt/gpuhost/dist/cli.js|/usr/lib/gpuhost/bin/node /usr/lib/gpuhost/dist/cli.js|' \
    "$unit" >"$pkg/lib/systemd/system/$(basename "$unit")"
done
install -m 0644 "$here/agent.yaml" "$pkg/etc/gpuhost/agent.yaml"
install -m 0644 "$here/copyright" "$pkg/usr/share/doc/gpuhost/copyright"
install -D -m 0644 "$here/lintian-overrides" "$pkg/usr/share/lintian/overrides/gpuhost"
printf 'gpuhost (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- gpuhost maintainers <gpuhost@example.org>  %s\n' \
  "$version" "$version" "$(git log -1 --format=%cD 2>/dev/null || date -R)" |
  gzip -9n >"$pkg/usr/share/doc/gpuhost/changelog.gz"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$pkg/DEBIAN/"
install -m 0644 "$here/conffiles" "$pkg/DEBIAN/"

# Depends from the ELF files themselves (node and the SQLite module)
mkdir -p "$stage/shlibs/debian"
printf 'Source: gpuhost\n\nPackage: gpuhost\nArchitecture: any\n' >"$stage/shlibs/debian/control"
shlibs=$(cd "$stage/shlibs" && dpkg-shlibdeps -O --warnings=0 "$lib/bin/node" \
  "$lib/node_modules/better-sqlite3/build/Release/better_sqlite3.node" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
  -e "s|^Depends: \(.*\)|Depends: \1, $shlibs|" "$here/control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$pkg/DEBIAN/md5sums"
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg/usr/lib/gpuhost" -type f ! -path '*/bin/node' ! -name '*.node' -exec chmod 0644 {} +

mkdir -p "$out"
deb="$out/gpuhost_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$pkg" "$deb" >/dev/null
echo "$deb ($(du -h "$deb" | cut -f1), built in $(($(date +%s) - started)) s)"
