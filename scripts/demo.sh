#!/usr/bin/env bash
# A short tour of lifeboat on a local directory repository (README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build >/dev/null
lb() { echo "+ lifeboat $*" >&2; node dist/cli/main.js "$@"; }

work=$(mktemp -d /tmp/lifeboat-demo.XXXXXX)
export LIFEBOAT_REPOSITORY="$work/repo"
export LIFEBOAT_CACHE_DIR="$work/cache"
printf 'correct horse battery staple\n' > "$work/password"
printf 'another password\n' > "$work/password2"
chmod 600 "$work/password" "$work/password2"
export LIFEBOAT_PASSWORD_FILE="$work/password"

lb init
lb key add --new-password-file "$work/password2"
lb key list
lb cat config
echo "+ lifeboat key list --json (opened with the second password)" >&2
LIFEBOAT_PASSWORD_FILE="$work/password2" node dist/cli/main.js key list --json
lb cache info
echo "+ a wrong password:" >&2
set +e
env -u LIFEBOAT_PASSWORD_FILE LIFEBOAT_PASSWORD=wrong node dist/cli/main.js key list; echo "exit code $?" >&2
set -e
echo "demo repository left in $work (delete it with: rm -rf $work)" >&2
