#!/usr/bin/env bash
# refresh-dsfr.sh VERSION — vendor the DSFR (Système de Design de l'État)
# assets that internal/web serves, from the @gouvfr/dsfr npm package.
#
# Only what the pages load is kept: dsfr.min.css, every file its url()s point
# at (icons and fonts), the favicon and the licence. Where an @font-face lists
# a woff2 source followed by a woff fallback, only the woff2 is kept: every
# browser we support picks the first format it understands, so the woff is
# never requested. internal/web's tests check that every other url() in the
# stylesheet resolves to a kept file.
#
# Without VERSION, the version recorded in internal/web/static/dsfr/VERSION is
# fetched again, which makes the vendored tree reproducible.
#
# Usage: scripts/refresh-dsfr.sh [VERSION]      (called by `make dsfr`)
set -euo pipefail

cd "$(dirname "$0")/.."
dest=internal/web/static/dsfr

version=${1:-}
if [[ -z $version && -f $dest/VERSION ]]; then
	version=$(tr -d '[:space:]' <"$dest/VERSION")
fi
# A pinned exact version, never a range or a tag such as "latest": the
# vendored tree must be reproducible from VERSION alone.
if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	echo "usage: $0 VERSION   (exact version, e.g. 1.15.3; see: npm view @gouvfr/dsfr version)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "@gouvfr/dsfr@$version" >/dev/null)
tar -xzf "$work"/gouvfr-dsfr-"$version".tgz -C "$work"
pkg=$work/package
dist=$pkg/dist

got=$(node -p 'require(process.argv[1]).version' "$pkg/package.json")
if [[ $got != "$version" ]]; then
	echo "npm returned @gouvfr/dsfr $got, wanted $version" >&2
	exit 1
fi

# Build the new tree beside the old one and swap at the end, so a failure
# half-way never leaves a mix of two versions in the source tree.
stage=$work/stage
mkdir -p "$stage/favicon"

cp "$dist/dsfr.min.css" "$stage/dsfr.min.css"
# The DSFR inlines FranceConnect's and ProConnect's logos in .fr-connect's
# and .fr-connect--pro's ::before. They are those services' marks, not
# ours: Sésame has its own button (sesame-button.css), so the vendored
# stylesheet keeps no copy of them.
perl -0pi -e 's/(\.fr-connect(?:--pro)?:before\{[^}]*?)background-image:url\("data:[^"]*"\)/$1background-image:none/g' "$stage/dsfr.min.css"
if grep -q 'fr-connect[^{]*:before{[^}]*data:image' "$stage/dsfr.min.css"; then
	echo "a FranceConnect logo is still inlined in dsfr.min.css: update the filter above" >&2
	exit 1
fi

# Every non-data url() in the stylesheet, unquoted, one per line.
refs=$(grep -o 'url([^)]*)' "$dist/dsfr.min.css" |
	grep -v 'data:' |
	sed -E "s/^url\\([\"']?//; s/[\"']?\\)\$//" |
	sort -u)

while IFS= read -r ref; do
	[[ -n $ref ]] || continue
	# The stylesheet is third-party input: refuse anything that could copy
	# from outside dist/ or write outside the destination.
	if [[ ! $ref =~ ^[A-Za-z0-9_./-]+$ || $ref == *..* || $ref == /* ]]; then
		echo "unexpected url() in dsfr.min.css: $ref" >&2
		exit 1
	fi
	if [[ $ref == *.woff ]] && grep -qxF "${ref}2" <<<"$refs"; then
		continue # woff fallback of a kept woff2
	fi
	if [[ ! -f $dist/$ref ]]; then
		echo "dsfr.min.css references $ref, which the package does not ship" >&2
		exit 1
	fi
	mkdir -p "$stage/$(dirname "$ref")"
	cp "$dist/$ref" "$stage/$ref"
done <<<"$refs"

for f in favicon.ico favicon.svg apple-touch-icon.png; do
	cp "$dist/favicon/$f" "$stage/favicon/$f"
done

cp "$pkg/LICENSE.md" "$stage/LICENSE.md"
echo "$version" >"$stage/VERSION"

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -R "$stage" "$dest"

echo "DSFR $version vendored in $dest ($(du -sh "$dest" | cut -f1), $(find "$dest" -type f | wc -l) files)"
