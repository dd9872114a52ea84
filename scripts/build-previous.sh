#!/usr/bin/env bash
# Builds the flotilla node at an earlier commit, for rolling-upgrade tests and benchmark
# baselines, and prints the binary's path as its last line.
#
#   scripts/build-previous.sh [COMMIT] [--release]
#
# COMMIT defaults to the release before the request pipeline (the fleet a rolling upgrade
# starts from). The binary is cached in $FLOTILLA_CACHE/builds/COMMIT-PROFILE/flotilla, so
# only the first call builds; the checkout is a temporary git worktree, removed after.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
default_commit=e48934e
commit=$default_commit
profile=debug
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    -*) echo "usage: $0 [COMMIT] [--release]" >&2; exit 2 ;;
    *) commit=$arg ;;
  esac
done

die() { echo "build-previous: $*" >&2; exit 1; }

full=$(git -C "$root" rev-parse --verify --quiet "$commit^{commit}") ||
  die "commit $commit is not in this clone (a shallow clone? run git fetch --unshallow)"
cache=$(realpath -m "${FLOTILLA_CACHE:-$HOME/.cache/flotilla}")/builds
out=$cache/${full:0:12}-$profile
if [[ -x $out/flotilla ]]; then
  echo "$out/flotilla"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -x $out/flotilla ]]; then
  checkout=$(mktemp -d "$cache/checkout.XXXXXX")
  trap 'git -C "$root" worktree remove --force "$checkout" >/dev/null 2>&1 || rm -rf "$checkout"' EXIT
  git -C "$root" worktree add --detach --quiet "$checkout" "$full"
  echo "build-previous: building flotilla at ${full:0:12} ($profile), once" >&2
  flags=()
  [[ $profile == release ]] && flags+=(--release)
  (cd "$checkout" && CARGO_TARGET_DIR=$cache/target cargo build --quiet "${flags[@]}" --bin flotilla) ||
    die "building ${full:0:12} failed"
  mkdir -p "$out"
  cp "$cache/target/$profile/flotilla" "$out/flotilla"
fi
echo "$out/flotilla"
