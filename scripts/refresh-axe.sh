#!/usr/bin/env bash
# refresh-axe.sh [VERSION] — vendor axe-core's minified build, which the
# browser tests (e2e/a11y_browser_test.go) inject into every page, from the
# axe-core npm package: e2e/testdata/axe.min.js, its licence (MPL-2.0) as
# e2e/testdata/axe-core.LICENSE, and the version in e2e/testdata/axe.VERSION.
#
# Without VERSION, the version recorded in e2e/testdata/axe.VERSION is
# fetched again, which makes the vendored file reproducible.
#
# Usage: scripts/refresh-axe.sh [VERSION]      (called by `make axe`)
set -euo pipefail

cd "$(dirname "$0")/.."
dest=e2e/testdata

version=${1:-}
if [[ -z $version && -f $dest/axe.VERSION ]]; then
	version=$(tr -d '[:space:]' <"$dest/axe.VERSION")
fi
# An exact version, never a range or "latest": the tests' verdict must not
# change under our feet when axe-core adds a rule.
if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	echo "usage: $0 VERSION   (exact version, e.g. 4.14.1; see: npm view axe-core version)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "axe-core@$version" >/dev/null)
tar -xzf "$work/axe-core-$version.tgz" -C "$work"
pkg=$work/package

got=$(node -p 'require(process.argv[1]).version' "$pkg/package.json")
if [[ $got != "$version" ]]; then
	echo "npm returned axe-core $got, wanted $version" >&2
	exit 1
fi
license=$(node -p 'require(process.argv[1]).license' "$pkg/package.json")
if [[ $license != "MPL-2.0" ]]; then
	echo "axe-core $version is under $license, not MPL-2.0: check it may be vendored before going on" >&2
	exit 1
fi
# The build names its version in its header: a stale or foreign file is
# caught here rather than in a test.
if ! head -c 300 "$pkg/axe.min.js" | grep -qF "axe v$version"; then
	echo "axe.min.js of the package does not say axe v$version" >&2
	exit 1
fi

mkdir -p "$dest"
cp "$pkg/axe.min.js" "$dest/axe.min.js"
cp "$pkg/LICENSE" "$dest/axe-core.LICENSE"
echo "$version" >"$dest/axe.VERSION"
echo "axe-core $version vendored in $dest/axe.min.js ($(du -h "$dest/axe.min.js" | cut -f1))"
