#!/usr/bin/env bash
# test/services/mariadb.sh - a private MariaDB 10.11 for lifeboat's tests: mariadb-install-db into
# $MARIADB_TEST_DIR, listening on 127.0.0.1 (a free port) and a socket in that directory, run as
# the `mysql` user (root when it does not exist), with a password-authenticated admin user.
#
# Usage:
#   MARIADB_TEST_DIR=/tmp/x test/services/mariadb.sh start   # install if missing, init, start;
#                                                            # print `export MARIADB_TEST_...` lines
#   MARIADB_TEST_DIR=/tmp/x test/services/mariadb.sh stop    # stop it
#   MARIADB_TEST_DIR=/tmp/x test/services/mariadb.sh clean   # stop, delete the directory
#
# Printed: MARIADB_TEST_HOST, MARIADB_TEST_PORT, MARIADB_TEST_USER, MARIADB_TEST_PASSWORD,
# MARIADB_TEST_SOCKET. MARIADB_TEST_NO_INSTALL=1: never run apt-get.
set -euo pipefail
CMD=${1:-start}
DIR=${MARIADB_TEST_DIR:?set MARIADB_TEST_DIR}
case "$DIR" in /|/tmp|/tmp/|/root|/home|/usr*|/etc*|/var|/var/) echo "refusing to use '$DIR'" >&2; exit 1 ;; esac
MARKER="$DIR/.lifeboat-mariadb"
SOCK="$DIR/mysqld.sock"
PIDFILE="$DIR/mysqld.pid"
TEST_USER=lbtest
log() { printf '[mariadb.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

run_user() { if id mysql >/dev/null 2>&1; then echo mysql; else id -un; fi; }

ensure_installed() {
  command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 && command -v mariadb-dump >/dev/null 2>&1 && return 0
  [ "${MARIADB_TEST_NO_INSTALL:-0}" = 1 ] && die "MariaDB is not installed"
  [ "$(id -u)" = 0 ] || die "MariaDB is missing and we are not root: apt-get install mariadb-server mariadb-client"
  log "installing mariadb-server mariadb-client with apt-get"
  local aptlog="${TMPDIR:-/tmp}/lifeboat-apt-mariadb.log"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q install mariadb-server mariadb-client >"$aptlog" 2>&1 9>&- \
    || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null 2>&1 && \
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q install mariadb-server mariadb-client >>"$aptlog" 2>&1 9>&-; } \
    || die "apt-get install mariadb-server failed (log: $aptlog)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pid_is_ours() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--datadir=$DIR/data"
}

print_env() {
  printf 'export MARIADB_TEST_HOST=127.0.0.1\n'
  printf 'export MARIADB_TEST_PORT=%q\n' "$(cat "$DIR/port")"
  printf 'export MARIADB_TEST_USER=%q\n' "$TEST_USER"
  printf 'export MARIADB_TEST_PASSWORD=%q\n' "$(cat "$DIR/password")"
  printf 'export MARIADB_TEST_SOCKET=%q\n' "$SOCK"
}

start() {
  ensure_installed
  mkdir -p "$DIR"
  touch "$MARKER"
  if pid_is_ours; then log "already running"; print_env; return 0; fi
  local u; u=$(run_user)
  chmod 711 "$DIR"
  local p=$DIR
  while p=$(dirname "$p"); [ "$p" != / ]; do
    if [ -O "$p" ] && [ "$(( $(stat -c '%#a' "$p") & 1 ))" = 0 ]; then chmod o+x "$p"; log "added o+x to $p"; fi
  done
  local fresh=0
  if [ ! -d "$DIR/data/mysql" ]; then
    fresh=1
    rm -rf "$DIR/data"; mkdir -p "$DIR/data"
    [ "$(id -u)" = 0 ] && chown "$u" "$DIR/data"
    mariadb-install-db --no-defaults --datadir="$DIR/data" --user="$u" --auth-root-authentication-method=socket \
      --skip-test-db >"$DIR/install.log" 2>&1 || { tail -20 "$DIR/install.log" >&2; die "mariadb-install-db failed"; }
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/password"
    chmod 600 "$DIR/password"
  fi
  [ "$(id -u)" = 0 ] && chown "$u" "$DIR"
  local attempt port i
  for attempt in 1 2 3; do
    port=$(free_port)
    echo "$port" > "$DIR/port"
    # setsid: the server must not die with our process group; 9>&-: nor hold our descriptors
    setsid mariadbd --no-defaults --datadir="$DIR/data" --socket="$SOCK" --port="$port" --bind-address=127.0.0.1 \
      --pid-file="$PIDFILE" --log-error="$DIR/error.log" --user="$u" --skip-name-resolve \
      --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --innodb-flush-log-at-trx-commit=0 \
      --skip-log-bin --max-connections=50 </dev/null >/dev/null 2>&1 9>&- &
    for i in $(seq 1 120); do
      if mariadb-admin --no-defaults --socket="$SOCK" --user=root ping >/dev/null 2>&1; then break; fi
      sleep 0.5
    done
    if mariadb-admin --no-defaults --socket="$SOCK" --user=root ping >/dev/null 2>&1; then
      if [ "$fresh" = 1 ]; then
        mariadb --no-defaults --socket="$SOCK" --user=root -e "CREATE USER '$TEST_USER'@'%' IDENTIFIED BY '$(cat "$DIR/password")'; GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'%' WITH GRANT OPTION; FLUSH PRIVILEGES;" \
          || die "creating the test user failed"
      fi
      log "ready on 127.0.0.1:$port (data: $DIR/data)"
      print_env
      return 0
    fi
    log "start attempt $attempt failed"; tail -5 "$DIR/error.log" >&2 || true
    stop
  done
  die "MariaDB did not start (log: $DIR/error.log)"
}

stop() {
  if pid_is_ours; then
    local pid i
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do pid_is_ours || break; sleep 0.2; done
    if pid_is_ours; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
}

case "$CMD" in
  start) start ;;
  stop) [ -d "$DIR" ] && stop; true ;;
  env) pid_is_ours || die "not running"; print_env ;;
  clean)
    [ -d "$DIR" ] || exit 0
    [ -f "$MARKER" ] || die "$DIR was not created by this script, not deleting it"
    stop; rm -rf "${DIR:?}"; log "removed $DIR" ;;
  *) die "usage: $0 start|stop|env|clean" ;;
esac
