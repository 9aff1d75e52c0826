#!/usr/bin/env bash
# test/services/postgres.sh - a private PostgreSQL 15 for lifeboat's tests: initdb into
# $PG_TEST_DIR, listening on 127.0.0.1 (a free port) and a socket in that directory, run
# as the non-root user `postgres` (or `nobody`); TCP with password auth (scram-sha-256), the
# socket with peer auth (connect as the OS user PG_TEST_OS_USER).
#
# Usage:
#   PG_TEST_DIR=/tmp/x test/services/postgres.sh start   # install if missing, init, start;
#                                                        # print `export PG_TEST_...` lines
#   PG_TEST_DIR=/tmp/x test/services/postgres.sh stop    # stop it
#   PG_TEST_DIR=/tmp/x test/services/postgres.sh clean   # stop, delete the directory
#
# Printed: PG_TEST_HOST, PG_TEST_PORT, PG_TEST_USER (superuser), PG_TEST_PASSWORD, PG_TEST_SOCKET_DIR,
# PG_TEST_OS_USER.
# PG_TEST_NO_INSTALL=1: never run apt-get.
set -euo pipefail
CMD=${1:-start}
DIR=${PG_TEST_DIR:?set PG_TEST_DIR}
case "$DIR" in /|/tmp|/tmp/|/root|/home|/usr*|/etc*|/var|/var/) echo "refusing to use '$DIR'" >&2; exit 1 ;; esac
PGBIN=${PG_TEST_BIN:-/usr/lib/postgresql/15/bin}
MARKER="$DIR/.lifeboat-postgres"
log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

runas_user() {
  if id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}
as_user() {  # run a command as the server's user (root cannot run postgres)
  local u; u=$(runas_user)
  if [ "$(id -u)" = 0 ]; then runuser -u "$u" -- "$@"; else "$@"; fi
}

ensure_installed() {
  [ -x "$PGBIN/initdb" ] && command -v pg_dump >/dev/null 2>&1 && return 0
  [ "${PG_TEST_NO_INSTALL:-0}" = 1 ] && die "PostgreSQL 15 is not installed ($PGBIN/initdb missing)"
  [ "$(id -u)" = 0 ] || die "PostgreSQL 15 is missing and we are not root: apt-get install postgresql-15 postgresql-client-15"
  log "installing postgresql-15 with apt-get"
  # 9>&-: a daemon started by a package script must not inherit our descriptors
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q install postgresql-15 postgresql-client-15 >"${TMPDIR:-/tmp}/lifeboat-apt-postgres.log" 2>&1 9>&- \
    || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null 2>&1 && \
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q install postgresql-15 postgresql-client-15 >>"${TMPDIR:-/tmp}/lifeboat-apt-postgres.log" 2>&1 9>&-; } \
    || die "apt-get install postgresql-15 failed (log: ${TMPDIR:-/tmp}/lifeboat-apt-postgres.log)"
  [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb still missing after apt-get"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_env() {
  printf 'export PG_TEST_HOST=127.0.0.1\n'
  printf 'export PG_TEST_PORT=%q\n' "$(cat "$DIR/port")"
  printf 'export PG_TEST_USER=postgres\n'
  printf 'export PG_TEST_PASSWORD=%q\n' "$(cat "$DIR/password")"
  printf 'export PG_TEST_SOCKET_DIR=%q\n' "$DIR/sock"
  printf 'export PG_TEST_OS_USER=%q\n' "$(runas_user)"
}

running() {
  [ -f "$DIR/data/postmaster.pid" ] && as_user "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

start() {
  ensure_installed
  mkdir -p "$DIR"
  touch "$MARKER"
  if running; then log "already running"; print_env; return 0; fi
  local u; u=$(runas_user)
  chmod 711 "$DIR"
  # the server's user must reach $DIR: add search (x) permission to our own private parents
  local p=$DIR
  while p=$(dirname "$p"); [ "$p" != / ]; do
    if [ -O "$p" ] && [ "$(( $(stat -c '%#a' "$p") & 1 ))" = 0 ]; then chmod o+x "$p"; log "added o+x to $p"; fi
  done
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    rm -rf "$DIR/data"
    mkdir -p "$DIR/data" "$DIR/sock"
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/password"
    chmod 600 "$DIR/password"
    mkdir -p "$DIR/init"
    cp "$DIR/password" "$DIR/init/pwfile"
    [ "$(id -u)" = 0 ] && chown -R "$u" "$DIR/data" "$DIR/sock" "$DIR/init"
    as_user "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 --pwfile="$DIR/init/pwfile" -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
      || { tail -20 "$DIR/initdb.log" >&2; die "initdb failed"; }
    rm -rf "$DIR/init"
  fi
  local attempt port
  for attempt in 1 2 3; do
    port=$(free_port)
    echo "$port" > "$DIR/port"
    if as_user "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w -t 60 \
        -o "-p $port -k $DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 -c shared_buffers=32MB" \
        start >"$DIR/pg_ctl.log" 2>&1; then
      log "ready on 127.0.0.1:$port (data: $DIR/data)"
      print_env
      return 0
    fi
    log "start attempt $attempt failed"; tail -5 "$DIR/data/server.log" >&2 || true
  done
  die "PostgreSQL did not start (log: $DIR/data/server.log)"
}

stop() {
  if [ -f "$DIR/data/postmaster.pid" ]; then
    as_user "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
}

case "$CMD" in
  start) start ;;
  stop) [ -d "$DIR" ] && stop; true ;;
  env) running || die "not running"; print_env ;;
  clean)
    [ -d "$DIR" ] || exit 0
    [ -f "$MARKER" ] || die "$DIR was not created by this script, not deleting it"
    stop; rm -rf "${DIR:?}"; log "removed $DIR" ;;
  *) die "usage: $0 start|stop|env|clean" ;;
esac
