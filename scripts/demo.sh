#!/usr/bin/env bash
# A short tour of lifeboat's main job on a local directory repository (README's first command):
# init, back up a folder, list snapshots, change a file, back up again, restore one file.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build >/dev/null
lb() { echo "+ lifeboat $*" >&2; node dist/cli/main.js "$@"; }

work=$(mktemp -d /tmp/lifeboat-demo.XXXXXX)
export LIFEBOAT_REPOSITORY="$work/repo"
export LIFEBOAT_CACHE_DIR="$work/cache"
printf 'correct horse battery staple\n' > "$work/password"
chmod 600 "$work/password"
export LIFEBOAT_PASSWORD_FILE="$work/password"

# something to back up: this project's sources and docs, plus a few generated files
data="$work/data"
mkdir -p "$data"
cp -r src docs README.md "$data/"
head -c 20000000 /dev/urandom > "$data/random.bin"
seq 1 200000 | sed 's/^/INSERT INTO t VALUES (/; s/$/);/' > "$data/dump.sql"
ln -s README.md "$data/readme-link"

lb init
lb backup "$data" --tag demo
echo "-- changing one file and backing up again" >&2
echo "-- an edit" >> "$data/dump.sql"
lb backup "$data" --tag demo
lb snapshots
lb ls latest "$data/docs"
echo "+ lifeboat restore latest:$data/docs --target $work/restored --include repository-format.md" >&2
node dist/cli/main.js restore "latest:$data/docs" --target "$work/restored" --include repository-format.md
cmp "$data/docs/repository-format.md" "$work/restored/repository-format.md" && echo "restored file is identical to the original" >&2
echo "+ lifeboat dump latest $data/README.md | head -3" >&2
node dist/cli/main.js dump latest "$data/README.md" | head -3
echo "+ a wrong password:" >&2
set +e
env -u LIFEBOAT_PASSWORD_FILE LIFEBOAT_PASSWORD=wrong node dist/cli/main.js snapshots; echo "exit code $?" >&2
set -e
echo "demo repository left in $work (delete it with: rm -rf $work)" >&2
