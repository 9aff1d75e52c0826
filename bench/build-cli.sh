#!/usr/bin/env bash
# bench/build-cli.sh [REV] - build lifeboat's CLI from a commit (default HEAD) into a directory of
# its own, for `npm run bench -- --cli DIR/dist/cli/main.js`: the checkout's dist/ is rebuilt by
# whoever works in it, with their uncommitted changes; this one is exactly REV.
#
#   cli=$(bench/build-cli.sh) && npm run bench -- --cli "$cli"
#
# Output dir: /tmp/lifeboat-bench-cli-<sha> (reused when already built). node_modules is a symlink
# to the checkout's; the native addon is rebuilt there with node-gyp when native/ differs from the
# checkout's build, else copied. Prints the path of dist/cli/main.js on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REV=${1:-HEAD}
SHA=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}")
OUT=${LIFEBOAT_BENCH_CLI_DIR:-/tmp/lifeboat-bench-cli-$SHA}
if [ -f "$OUT/dist/cli/main.js" ] && [ "$(cat "$OUT/COMMIT" 2>/dev/null)" = "$SHA" ]; then
  echo "$OUT/dist/cli/main.js"
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
git -C "$ROOT" archive "$SHA" | tar -x -C "$OUT"
ln -s "$ROOT/node_modules" "$OUT/node_modules"
if [ -f "$ROOT/build/Release/lifeboat_native.node" ] && git -C "$ROOT" diff --quiet "$SHA" -- native binding.gyp; then
  mkdir -p "$OUT/build/Release"
  cp "$ROOT/build/Release/lifeboat_native.node" "$OUT/build/Release/"
else
  (cd "$OUT" && npm run --silent install >&2)
fi
(cd "$OUT" && npx --no-install tsc -p tsconfig.build.json >&2)
echo "$SHA" > "$OUT/COMMIT"
echo "$OUT/dist/cli/main.js"
