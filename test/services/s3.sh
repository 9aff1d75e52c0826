#!/usr/bin/env bash
# test/services/s3.sh - lifeboat's test S3 server: OpenStack Swift 2.30 + s3api on
# 127.0.0.1, from Debian's python3-swift, with no Docker and no XFS. Adapted from the
# team's infra recipe (swift-s3.sh); it is the project's own copy and needs nothing
# outside the repository.
#
# Usage:
#   test/services/s3.sh [start] [PORT]   install (if missing), configure, start on PORT
#                                (default: a free port picked at start), wait until
#                                ready, print `export ...` lines on stdout; when this
#                                data directory's instance already runs, print its lines
#   test/services/s3.sh env      print the export lines of the running instance
#                                (also in $SWIFT_S3_DIR/run/env.sh while it runs)
#   test/services/s3.sh status   exit 0 if the instance answers S3 requests
#   test/services/s3.sh stop     stop only the processes this script started (for this dir)
#   test/services/s3.sh clean    stop, then delete the data directory
#
#   lines=$(test/services/s3.sh start) && eval "$lines"     # typical use
#   lines=$(SWIFT_S3_COMPAT=1 test/services/s3.sh start)     # the second, "compat" instance
#   (a bare eval "$(...)" would not notice a failed start)
#
# Settings (environment):
#   SWIFT_S3_DIR         data + config + pid + log directory; one per instance
#                        (default <project>/.tmp/s3, or <project>/.tmp/s3-compat
#                        with SWIFT_S3_COMPAT=1, so both can run at once)
#   SWIFT_S3_PORT        S3 endpoint port (or first argument)  (default: a free port)
#   SWIFT_S3_ACCOUNT / SWIFT_S3_USER / SWIFT_S3_SECRET          (default test / tester / testing)
#                        -> AWS_ACCESS_KEY_ID="ACCOUNT:USER", AWS_SECRET_ACCESS_KEY="SECRET"
#   SWIFT_S3_REGION      region used for SigV4 and GetBucketLocation (default us-east-1)
#   SWIFT_S3_WORKERS     proxy worker processes (default 0 = one process, with an
#                        in-process cache; >0 runs without any cache and is slower)
#   SWIFT_S3_ACCOUNT_PORT / SWIFT_S3_CONTAINER_PORT / SWIFT_S3_OBJECT_PORT
#                        internal Swift ports (default: free ports picked at start)
#   SWIFT_S3_TIMEOUT     seconds to wait for readiness (default 60)
#   SWIFT_S3_PYTHON      Debian's python that has python3-swift (default /usr/bin/python3)
#   SWIFT_S3_APT_PACKAGES  packages installed when Swift is missing (default python3-swift)
#   SWIFT_S3_NO_INSTALL=1  never run apt-get
#   SWIFT_S3_COMPAT=1    load shims for current AWS SDKs into the proxy (Content-MD5 for
#                        DeleteObjects, If-None-Match:* on PutObject, aws-chunked bodies,
#                        hang on DeleteObject of the latest version). Default 0: Swift
#                        as OpenStack clouds run it, which a client must cope with.
#
# Client settings (@aws-sdk/client-s3 v3):
#   new S3Client({ endpoint: process.env.S3_ENDPOINT, region: process.env.AWS_REGION,
#                  forcePathStyle: true })       // credentials come from AWS_* env
#   Without the shims (the default) use requestChecksumCalculation and
#   responseChecksumValidation 'WHEN_REQUIRED', add Content-MD5 to DeleteObjects,
#   and expect 501 for PutObject with If-None-Match. With SWIFT_S3_COMPAT=1 the
#   SDK's default checksum settings work and conditional create is supported.
#
# Everything binds to 127.0.0.1 only. Nothing is written outside SWIFT_S3_DIR
# except what apt-get installs; Swift's packaged /etc/swift config is not used.
set -euo pipefail

CMD=start
case "${1:-}" in
  start|stop|status|env|clean) CMD=$1; shift ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
[ "$#" -gt 0 ] && SWIFT_S3_PORT=$1

PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COMPAT=${SWIFT_S3_COMPAT:-0}
if [ "$COMPAT" = 1 ]; then DIR=${SWIFT_S3_DIR:-$PROJECT_DIR/.tmp/s3-compat}; else DIR=${SWIFT_S3_DIR:-$PROJECT_DIR/.tmp/s3}; fi
PORT=${SWIFT_S3_PORT:-}   # empty: pick a free port at start
S3_ACCOUNT=${SWIFT_S3_ACCOUNT:-test}
S3_USER=${SWIFT_S3_USER:-tester}
S3_SECRET=${SWIFT_S3_SECRET:-testing}
REGION=${SWIFT_S3_REGION:-us-east-1}
WORKERS=${SWIFT_S3_WORKERS:-0}
TIMEOUT=${SWIFT_S3_TIMEOUT:-60}
PY=${SWIFT_S3_PYTHON:-/usr/bin/python3}
APT_PACKAGES=${SWIFT_S3_APT_PACKAGES:-python3-swift}
HOST=127.0.0.1
SERVERS="account-server container-server object-server proxy-server"

log() { printf '[s3.sh %s] %s\n' "${DIR##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$PORT" in *[!0-9]*) die "port must be a number, got '$PORT'" ;; esac
case "$S3_ACCOUNT" in ''|*[!A-Za-z0-9.-]*) die "SWIFT_S3_ACCOUNT may only use A-Z a-z 0-9 . -" ;; esac
case "$S3_USER" in ''|*[!A-Za-z0-9.-]*) die "SWIFT_S3_USER may only use A-Z a-z 0-9 . -" ;; esac
case "$S3_SECRET" in ''|*[!A-Za-z0-9._~+/=-]*) die "SWIFT_S3_SECRET may only use A-Z a-z 0-9 . _ ~ + / = -" ;; esac
case "$REGION" in ''|*[!a-z0-9-]*) die "SWIFT_S3_REGION may only use a-z 0-9 -" ;; esac
case "$WORKERS" in ''|*[!0-9]*) die "SWIFT_S3_WORKERS must be a number" ;; esac
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
case "$DIR" in /|/tmp|/tmp/|/root|/home|/usr*|/etc*|/var|/var/) die "refusing to use '$DIR' as data directory" ;; esac
ETC="$DIR/etc"; RUN="$DIR/run"; LOGD="$DIR/log"; DEVS="$DIR/srv"; HELPER="$DIR/bin/swift_s3_helper.py"
MARKER="$DIR/.swift-s3-dir"

# ---------------------------------------------------------------- helpers
pid_is_ours() {  # pid -> 0 if it is a live server started from this DIR
  local pid=$1 cmdline
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") 2>/dev/null || return 1
  case "$cmdline" in *"$HELPER server "*) return 0 ;; esac
  return 1
}

running_count() {
  local n=0 s pid
  for s in $SERVERS; do
    pid=$(cat "$RUN/$s.pid" 2>/dev/null || true)
    pid_is_ours "$pid" && n=$((n + 1))
  done
  echo "$n"
}

print_env() {
  local port=$1 region=$2 key=$3 secret=$4
  printf 'export S3_ENDPOINT=%q\n' "http://$HOST:$port"
  # read by AWS SDKs (JS v3 included) when a client is built without `endpoint`
  printf 'export AWS_ENDPOINT_URL_S3=%q\n' "http://$HOST:$port"
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$key"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$secret"
  printf 'export AWS_REGION=%q\n' "$region"
}

stop_servers() {
  local s pid i w any=0
  # proxy first, then the storage servers
  for s in proxy-server object-server container-server account-server; do
    pid=$(cat "$RUN/$s.pid" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    if pid_is_ours "$pid"; then
      any=1
      log "stopping $s (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 100); do pid_is_ours "$pid" || break; sleep 0.1; done
      if pid_is_ours "$pid"; then
        log "$s (pid $pid) did not exit, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    # with SWIFT_S3_WORKERS>0 the proxy forks workers into its process group
    # (pgid == its pid: the helper calls setsid); kill any left over, also
    # when the parent died first - but only processes running our helper
    for w in $(ps -e -o pid=,pgid= 2>/dev/null | awk -v g="$pid" '$2 == g {print $1}'); do
      if pid_is_ours "$w"; then
        any=1
        log "killing leftover $s worker (pid $w)"
        kill -KILL "$w" 2>/dev/null || true
      fi
    done
    rm -f "$RUN/$s.pid"
  done
  rm -f "$RUN/state" "$RUN/env.sh"
  [ "$any" = 1 ] || log "nothing running for $DIR"
}

with_lock() {  # serialise start/stop/clean on the same data directory
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 120 9 || die "could not lock $DIR/.lock"
  fi
}

# ---------------------------------------------------------------- install
have_swift() {
  [ -x "$PY" ] && "$PY" -I -c 'import swift.common.middleware.s3api.s3api, swift.proxy.server, swift.obj.server, swift.account.server, swift.container.server, swift.common.ring' >/dev/null 2>&1
}

apt_install() {  # installs $APT_PACKAGES
  local sudo="" aptlog="$DIR/log/apt.log"
  mkdir -p "$DIR/log"
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "cannot install $APT_PACKAGES: not root and no sudo"; return 1; }
    sudo="sudo -n"
  fi
  log "installing $APT_PACKAGES with apt-get (log: $aptlog)"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q)
  # 9>&-: a daemon started by a package script must not hold our lock
  if ! $sudo "${apt[@]}" install --no-install-recommends $APT_PACKAGES >>"$aptlog" 2>&1 9>&-; then
    log "apt-get install failed, running apt-get update and retrying"
    $sudo "${apt[@]}" update >>"$aptlog" 2>&1 9>&- || { log "apt-get update failed, see $aptlog"; return 1; }
    $sudo "${apt[@]}" install --no-install-recommends $APT_PACKAGES >>"$aptlog" 2>&1 9>&- \
      || { log "apt-get install $APT_PACKAGES failed, see $aptlog"; return 1; }
  fi
}

ensure_installed() {
  have_swift && return 0
  [ "${SWIFT_S3_NO_INSTALL:-0}" = 1 ] && die "Swift (python3-swift) is not installed and SWIFT_S3_NO_INSTALL=1"
  apt_install || die "could not install $APT_PACKAGES"
  have_swift || die "python3-swift installed but '$PY' cannot import swift"
}

# ---------------------------------------------------------------- config
write_helper() {
  mkdir -p "$DIR/bin"
  cat > "$HELPER.tmp" <<'PYEOF'
#!/usr/bin/python3
"""Helper for swift-s3.sh: run one Swift server, build rings, find free ports,
check readiness.  Swift reads /etc/swift/swift.conf by a hard-coded path; the
`server` mode points it at the private swift.conf in the data directory
instead (what swift.common.utils.set_swift_dir does for swift-recon)."""
import datetime
import hashlib
import hmac
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request


def use_private_swift_conf(swift_dir):
    from swift.common import utils
    utils.SWIFT_CONF_FILE = os.path.join(swift_dir, 'swift.conf')
    utils.HASH_PATH_PREFIX = b''
    utils.HASH_PATH_SUFFIX = b''
    utils.validate_configuration()
    from swift.common import storage_policy
    storage_policy.reload_storage_policies()
    # Swift logs to syslog (/dev/log or UDP); log to stderr only instead.
    utils.ThreadSafeSysLogHandler = lambda *a, **kw: logging.NullHandler()


def server(swift_dir, name, conf_file):
    # drop every fd inherited from the caller (lock files, CI pipes): a
    # server holding a pipe open would keep `$(swift-s3.sh start)` or a test
    # runner waiting for EOF
    os.closerange(3, 65536)
    try:
        os.setsid()  # own process group: `stop` can reap forked workers too
    except OSError:
        pass
    # swift_s3_compat.py (paste.filter_factory in proxy-server.conf) lives here
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    use_private_swift_conf(swift_dir)
    from swift.common.wsgi import run_wsgi
    kwargs = {'verbose': True}  # console (stderr) logging, kept by capture_stdio
    if name == 'object-server':
        from swift.obj import server as obj_server
        kwargs['global_conf_callback'] = obj_server.global_conf_callback
    sys.exit(run_wsgi(conf_file, name, **kwargs))


def rings(swift_dir, host, account_port, container_port, object_port):
    """Same as: swift-ring-builder X.builder create 8 1 1;
    swift-ring-builder X.builder add r1z1-HOST:PORT/d1 1; ... rebalance"""
    from swift.common.ring import RingBuilder
    for name, port in (('account', account_port), ('container', container_port),
                       ('object', object_port)):
        builder = RingBuilder(8, 1, 1)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': host,
                         'port': int(port), 'replication_ip': host,
                         'replication_port': int(port), 'device': 'd1',
                         'weight': 1.0, 'meta': ''})
        builder.rebalance()
        ring_tmp = os.path.join(swift_dir, '.%s.ring.gz.tmp' % name)
        builder.get_ring().save(ring_tmp)
        os.rename(ring_tmp, os.path.join(swift_dir, '%s.ring.gz' % name))
        builder.save(os.path.join(swift_dir, '%s.builder' % name))


def freeports(host, count):
    socks = []
    for _ in range(int(count)):
        s = socket.socket()
        s.bind((host, 0))
        socks.append(s)
    print(' '.join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def port_free(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, int(port)))
    except OSError:
        sys.exit(1)
    finally:
        s.close()


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def s3_list_buckets(endpoint, region, access_key, secret_key):
    """Signed (SigV4) ListBuckets; returns the HTTP status."""
    host = endpoint.split('://', 1)[1].rstrip('/')
    now = datetime.datetime.utcnow()
    amz_date = now.strftime('%Y%m%dT%H%M%SZ')
    day = now.strftime('%Y%m%d')
    payload_hash = hashlib.sha256(b'').hexdigest()
    canonical = '\n'.join(['GET', '/', '', 'host:' + host,
                           'x-amz-content-sha256:' + payload_hash,
                           'x-amz-date:' + amz_date, '',
                           'host;x-amz-content-sha256;x-amz-date',
                           payload_hash])
    scope = '%s/%s/s3/aws4_request' % (day, region)
    to_sign = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(('AWS4' + secret_key).encode(), day)
    k = _sign(_sign(_sign(k, region), 's3'), 'aws4_request')
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(endpoint.rstrip('/') + '/', headers={
        'x-amz-date': amz_date, 'x-amz-content-sha256': payload_hash,
        'Authorization': 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders='
                         'host;x-amz-content-sha256;x-amz-date, Signature=%s'
                         % (access_key, scope, sig)})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def _healthy(host, port):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open('http://%s:%s/healthcheck' % (host, port),
                         timeout=2) as resp:
            return resp.status == 200
    except Exception:
        return False


def ready(host, ports, endpoint, region, access_key, secret_key, timeout,
          pids=''):
    """Wait until every server answers /healthcheck and a signed S3
    ListBuckets returns 200.  Exit 1 on timeout or if a server died."""
    deadline = time.time() + float(timeout)
    ports = [p for p in ports.split(',') if p]
    pids = [p for p in pids.split(',') if p]
    last = 'not started'
    while time.time() < deadline:
        dead = [p for p in pids if not os.path.exists('/proc/%s' % p)]
        if dead:
            print('server process(es) %s exited' % ','.join(dead),
                  file=sys.stderr)
            sys.exit(1)
        if all(_healthy(host, p) for p in ports):
            try:
                status = s3_list_buckets(endpoint, region, access_key,
                                         secret_key)
                if status == 200:
                    return
                last = 'ListBuckets returned HTTP %s' % status
            except Exception as e:
                last = 'ListBuckets failed: %s' % e
        else:
            last = 'healthcheck not answering yet'
        time.sleep(0.2)
    print('not ready after %ss: %s' % (timeout, last), file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
    mode, args = sys.argv[1], sys.argv[2:]
    {'server': server, 'rings': rings, 'freeports': freeports,
     'port_free': port_free, 'ready': ready}[mode](*args)
PYEOF
  mv -f "$HELPER.tmp" "$HELPER"

  cat > "$DIR/bin/swift_s3_compat.py.tmp" <<'PYEOF'
"""Compatibility shims between current AWS SDKs and Swift 2.30's s3api.

Loaded by swift-s3.sh into the proxy pipeline as two filters:

  ... s3compat s3api tempauth s3compat_restore copy slo ... proxy-server

s3compat (before s3api), for SigV4 requests (the DELETE fix for all):
  * DeleteObjects without Content-MD5: newer SDKs send x-amz-checksum-crc32
    instead, but s3api 2.30 insists on Content-MD5.  Compute and add it.
  * PutObject with "If-None-Match: *": s3api 2.30 answers 501, though Swift
    itself supports it.  Hide the header from s3api (the SigV4 signature is
    computed from the raw headers, so it still verifies) and give it back to
    the Swift object PUT in s3compat_restore -> 412 PreconditionFailed when
    the key exists.  Conditional PUTs to one key are serialised there, so
    exactly one of several concurrent creators wins.
  * DELETE without Content-Length: DeleteObject(VersionId=latest) would hang
    for client_timeout seconds in s3api 2.30 (its PUT?version-id subrequest
    reads the client socket); set an empty body.
  * aws-chunked bodies with x-amz-content-sha256 =
    STREAMING-UNSIGNED-PAYLOAD-TRAILER (what SDKs send for stream bodies when
    checksums are on): decode the chunk framing, verify the trailing
    CRC32/SHA1/SHA256 checksum, and pass a plain chunked body on.
"""
import base64
import json
import time as _time
import hashlib
import io
import zlib
from six.moves.urllib.parse import parse_qs

from swift.common import swob

STASH = 'swift_s3_compat.if_none_match'
UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'
MAX_DELETE_BODY = 10 * 1024 * 1024


def _is_sigv4(env):
    return (env.get('HTTP_AUTHORIZATION', '').startswith('AWS4-HMAC-SHA256')
            or 'X-Amz-Algorithm=' in env.get('QUERY_STRING', ''))


class AwsChunkedInput(object):
    """wsgi.input wrapper that strips aws-chunked framing and checks the
    decoded length and the trailing checksum (CRC32, SHA1 or SHA256; other
    algorithms are accepted unchecked)."""

    def __init__(self, wsgi_input, decoded_length, trailer_names):
        self._in = wsgi_input
        self._decoded_length = decoded_length
        self._left = 0          # bytes left in the current chunk
        self._done = False
        self._seen = 0
        self._crc32 = 0 if 'x-amz-checksum-crc32' in trailer_names else None
        self._sha1 = hashlib.sha1() \
            if 'x-amz-checksum-sha1' in trailer_names else None
        self._sha256 = hashlib.sha256() \
            if 'x-amz-checksum-sha256' in trailer_names else None
        self.trailers = {}

    @staticmethod
    def _bad(msg):
        # s3api turns a 422 from the body reader into BadDigest
        return swob.HTTPUnprocessableEntity(msg)

    def _read_exact(self, n):
        parts = []
        while n > 0:
            data = self._in.read(n)
            if not data:
                raise self._bad('truncated aws-chunked body')
            parts.append(data)
            n -= len(data)
        return b''.join(parts)

    def _next_chunk(self):
        line = self._in.readline(8192)
        if not line.endswith(b'\n'):
            raise self._bad('truncated aws-chunked body')
        try:
            size = int(line.split(b';', 1)[0].strip(), 16)
        except ValueError:
            raise self._bad('bad aws-chunked chunk header')
        if size:
            self._left = size
            return
        while True:  # trailers, then an empty line
            line = self._in.readline(8192)
            if not line or not line.strip():
                break
            key, _, value = line.decode('latin-1').partition(':')
            self.trailers[key.strip().lower()] = value.strip()
        self._done = True
        self._verify()

    def _verify(self):
        if self._decoded_length is not None and \
                self._seen != self._decoded_length:
            raise self._bad('x-amz-decoded-content-length mismatch')
        actual = {}
        if self._crc32 is not None:
            actual['x-amz-checksum-crc32'] = self._crc32.to_bytes(4, 'big')
        if self._sha1 is not None:
            actual['x-amz-checksum-sha1'] = self._sha1.digest()
        if self._sha256 is not None:
            actual['x-amz-checksum-sha256'] = self._sha256.digest()
        for name, digest in actual.items():
            sent = self.trailers.get(name)
            if sent is not None and \
                    base64.b64encode(digest).decode('ascii') != sent:
                raise self._bad('%s did not match the data' % name)

    def read(self, size=-1):
        want = None if size is None or size < 0 else size
        out = []
        while not self._done and (want is None or want > 0):
            if not self._left:
                self._next_chunk()
                continue
            n = self._left if want is None else min(want, self._left)
            data = self._in.read(n)
            if not data:
                raise self._bad('truncated aws-chunked body')
            self._left -= len(data)
            if not self._left and self._read_exact(2) != b'\r\n':
                raise self._bad('bad aws-chunked chunk end')
            self._seen += len(data)
            if self._crc32 is not None:
                self._crc32 = zlib.crc32(data, self._crc32)
            if self._sha1 is not None:
                self._sha1.update(data)
            if self._sha256 is not None:
                self._sha256.update(data)
            out.append(data)
            if want is not None:
                break  # a short read is fine: callers read until b''
        return b''.join(out)

    def close(self):
        close = getattr(self._in, 'close', None)
        if close:
            close()


class S3CompatMiddleware(object):
    def __init__(self, app, conf):
        self.app = app

    def __call__(self, env, start_response):
        if env.get('REQUEST_METHOD') == 'DELETE' and \
                'CONTENT_LENGTH' not in env and \
                'chunked' not in env.get('HTTP_TRANSFER_ENCODING', ''):
            # DeleteObject(VersionId=<latest>) makes s3api 2.30 send a
            # PUT?version-id subrequest that reads the (absent) body from the
            # client socket and hangs until client_timeout: give it an empty one
            env['CONTENT_LENGTH'] = '0'
            env['wsgi.input'] = io.BytesIO(b'')
        if _is_sigv4(env):
            method = env.get('REQUEST_METHOD')
            params = parse_qs(env.get('QUERY_STRING', ''),
                              keep_blank_values=True)
            if method == 'POST' and 'delete' in params:
                self._add_content_md5(env)
            elif method == 'PUT':
                if (env.get('HTTP_IF_NONE_MATCH', '').strip() == '*'
                        and 'headers_raw' in env
                        and 'HTTP_X_AMZ_COPY_SOURCE' not in env
                        and 'uploadId' not in params
                        and not any(h in env for h in (
                            'HTTP_IF_MATCH', 'HTTP_IF_MODIFIED_SINCE',
                            'HTTP_IF_UNMODIFIED_SINCE'))):
                    env.pop('HTTP_IF_NONE_MATCH')
                    env[STASH] = '*'
                if env.get('HTTP_X_AMZ_CONTENT_SHA256') == UNSIGNED_TRAILER:
                    self._decode_aws_chunked(env)
        return self.app(env, start_response)

    @staticmethod
    def _add_content_md5(env):
        if 'HTTP_CONTENT_MD5' in env or not env.get('CONTENT_LENGTH'):
            return
        try:
            length = int(env['CONTENT_LENGTH'])
        except ValueError:
            return
        if length > MAX_DELETE_BODY:
            return
        body = env['wsgi.input'].read(length)
        env['wsgi.input'] = io.BytesIO(body)
        env['CONTENT_LENGTH'] = str(len(body))
        env['HTTP_CONTENT_MD5'] = base64.b64encode(
            hashlib.md5(body).digest()).decode('ascii')

    @staticmethod
    def _decode_aws_chunked(env):
        encodings = [e.strip() for e in
                     env.get('HTTP_CONTENT_ENCODING', '').split(',')
                     if e.strip()]
        if 'aws-chunked' not in encodings:
            return
        decoded = env.pop('HTTP_X_AMZ_DECODED_CONTENT_LENGTH', None)
        try:
            decoded = int(decoded) if decoded is not None else None
        except ValueError:
            decoded = None
        trailer_names = [t.strip().lower() for t in
                         env.pop('HTTP_X_AMZ_TRAILER', '').split(',')]
        env['wsgi.input'] = AwsChunkedInput(env['wsgi.input'], decoded,
                                            trailer_names)
        # No Content-Length: s3api then does not hash-check the body against
        # the literal x-amz-content-sha256 value, and Swift reads until EOF.
        env.pop('CONTENT_LENGTH', None)
        env['HTTP_TRANSFER_ENCODING'] = 'chunked'
        rest = [e for e in encodings if e != 'aws-chunked']
        if rest:
            env['HTTP_CONTENT_ENCODING'] = ', '.join(rest)
        else:
            env.pop('HTTP_CONTENT_ENCODING', None)


class S3CompatRestoreMiddleware(object):
    """Give "If-None-Match: *" back to the Swift object PUT made by s3api.

    Swift checks If-None-Match when the upload starts, not when it commits,
    so two concurrent conditional PUTs could both succeed.  Conditional PUTs
    to the same object are therefore run one at a time (per proxy process:
    atomic with the default single-process proxy)."""

    def __init__(self, app, conf):
        self.app = app
        self._locks = {}  # path -> [Semaphore, users]

    def __call__(self, env, start_response):
        if env.get(STASH) and env.get('REQUEST_METHOD') == 'PUT' \
                and 'HTTP_X_COPY_FROM' not in env \
                and 'multipart-manifest' not in env.get('QUERY_STRING', ''):
            path = env.get('PATH_INFO', '')
            parts = path.split('/', 4)
            if len(parts) == 5 and parts[4]:  # /v1/account/container/object
                env['HTTP_IF_NONE_MATCH'] = env.pop(STASH)
                return self._serialised(path, env, start_response)
        return self.app(env, start_response)

    def _serialised(self, path, env, start_response):
        from eventlet.semaphore import Semaphore
        entry = self._locks.setdefault(path, [Semaphore(1), 0])
        entry[1] += 1
        entry[0].acquire()
        try:
            # the proxy has stored (or refused) the object when this returns
            return self.app(env, start_response)
        finally:
            entry[0].release()
            entry[1] -= 1
            if not entry[1]:
                self._locks.pop(path, None)


def filter_factory(global_conf, **local_conf):
    return lambda app: S3CompatMiddleware(app, local_conf)


def restore_filter_factory(global_conf, **local_conf):
    return lambda app: S3CompatRestoreMiddleware(app, local_conf)


class LocalCache(object):
    """In-process stand-in for swift.common.memcached.MemcacheRing.

    Only correct with a single proxy process (workers = 0): the proxy caches
    account/container info here instead of asking the backends on every
    request, and no memcached is needed (tempauth refuses to work without a
    cache object at all)."""

    MAX_ITEMS = 20000

    def __init__(self):
        self._data = {}

    @staticmethod
    def _expiry(ttl):
        ttl = int(ttl or 0)
        if ttl <= 0:
            return None
        if ttl > 30 * 24 * 3600:  # memcached: absolute unix time
            return ttl
        return _time.time() + ttl

    def _live(self, key):
        item = self._data.get(key)
        if item is not None and item[1] is not None and \
                item[1] <= _time.time():
            del self._data[key]
            return None
        return item

    def _store(self, key, value, ttl):
        if int(ttl or 0) < 0:  # memcached: already expired
            self._data.pop(key, None)
            return
        if len(self._data) >= self.MAX_ITEMS:
            now = _time.time()
            for k in [k for k, v in self._data.items()
                      if v[1] is not None and v[1] <= now]:
                del self._data[k]
            if len(self._data) >= self.MAX_ITEMS:
                self._data.clear()
        self._data[key] = (value, self._expiry(ttl))

    def set(self, key, value, serialize=True, time=0, min_compress_len=0,
            raise_on_error=False):
        if serialize:
            if isinstance(value, bytes):
                value = value.decode('utf8')
            value = ('json', json.dumps(value))
        elif isinstance(value, bytes):
            value = ('raw', value)
        else:
            value = ('raw', str(value).encode('utf-8'))
        self._store(key, value, time)

    def get(self, key, raise_on_error=False):
        item = self._live(key)
        if item is None:
            return None
        kind, value = item[0]
        return json.loads(value) if kind == 'json' else value

    def incr(self, key, delta=1, time=0):
        item = self._live(key)
        current = 0
        if item is not None:
            try:
                current = int(item[0][1])
            except (TypeError, ValueError):
                current = 0
            value = max(current + int(delta), 0)
        else:
            value = max(int(delta), 0)
        self._store(key, ('raw', str(value).encode('ascii')), time)
        return value

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -int(delta), time)

    def delete(self, key, server_key=None):
        self._data.pop(key, None)

    def set_multi(self, mapping, server_key, serialize=True, time=0,
                  min_compress_len=0):
        for key, value in mapping.items():
            self.set(key, value, serialize=serialize, time=time)

    def get_multi(self, keys, server_key):
        return [self.get(key) for key in keys]


class LocalCacheMiddleware(object):
    def __init__(self, app, conf):
        self.app = app
        self.memcache = LocalCache()

    def __call__(self, env, start_response):
        env['swift.cache'] = self.memcache
        return self.app(env, start_response)


def cache_filter_factory(global_conf, **local_conf):
    return lambda app: LocalCacheMiddleware(app, local_conf)
PYEOF
  mv -f "$DIR/bin/swift_s3_compat.py.tmp" "$DIR/bin/swift_s3_compat.py"
}

write_configs() {
  local s3port=$1 aport=$2 cport=$3 oport=$4 mport=$5 user compat="" compat_restore=""
  user=$(id -un)
  if [ "$COMPAT" = 1 ]; then compat=s3compat; compat_restore=s3compat_restore; fi
  local cache_section
  if [ "$WORKERS" = 0 ]; then
    cache_section="[filter:cache]
# in-process cache (single proxy process), see $DIR/bin/swift_s3_compat.py
paste.filter_factory = swift_s3_compat:cache_filter_factory"
  else
    # several proxy workers would each have their own in-process cache and
    # see stale bucket info; run without a cache instead (no memcached here:
    # that port was free at start, so lookups fail fast, errors not logged)
    cache_section="[filter:cache]
use = egg:swift#memcache
memcache_servers = $HOST:$mport
set log_level = CRITICAL"
  fi
  mkdir -p "$ETC" "$RUN" "$LOGD" "$DEVS/d1"

  [ -f "$ETC/swift.conf" ] || cat > "$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = swift-s3-local
swift_hash_path_prefix = swift-s3-local

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
# S3 allows up to 2 KiB of user metadata
max_meta_value_length = 2048
max_meta_overall_size = 8192
EOF

  local common="bind_ip = $HOST
user = $user
swift_dir = $ETC
devices = $DEVS
mount_check = false
disable_fallocate = true
log_level = INFO"

  local s
  for s in account container object; do
    local port
    case $s in account) port=$aport ;; container) port=$cport ;; object) port=$oport ;; esac
    cat > "$ETC/$s-server.conf.tmp" <<EOF
[DEFAULT]
$common
bind_port = $port
workers = 0
log_name = $s-server

[pipeline:main]
pipeline = healthcheck $s-server

[app:$s-server]
use = egg:swift#$s

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
    mv -f "$ETC/$s-server.conf.tmp" "$ETC/$s-server.conf"
  done

  cat > "$ETC/proxy-server.conf.tmp" <<EOF
[DEFAULT]
$common
bind_port = $s3port
workers = $WORKERS
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats $compat s3api tempauth $compat_restore copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
node_timeout = 60
client_timeout = 60

[filter:s3api]
use = egg:swift#s3api
location = $REGION
# S3 itself allows 10000 parts; slo max_manifest_segments must match
max_upload_part_num = 10000
s3_acl = false

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key = "$S3_ACCOUNT:$S3_USER", secret = the key below
user_${S3_ACCOUNT}_${S3_USER} = $S3_SECRET .admin

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 8388608

[filter:dlo]
use = egg:swift#dlo

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink

$cache_section

[filter:listing_formats]
use = egg:swift#listing_formats

# shims for current AWS SDKs (see $DIR/bin/swift_s3_compat.py); SWIFT_S3_COMPAT=0 drops them
[filter:s3compat]
paste.filter_factory = swift_s3_compat:filter_factory

[filter:s3compat_restore]
paste.filter_factory = swift_s3_compat:restore_filter_factory

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging
EOF
  mv -f "$ETC/proxy-server.conf.tmp" "$ETC/proxy-server.conf"
}

# ---------------------------------------------------------------- commands
start() {
  with_lock
  local key="$S3_ACCOUNT:$S3_USER"

  # already running with the same settings (and the requested port, if any)? print its env
  if [ -f "$RUN/state" ] && [ "$(running_count)" = 4 ]; then
    local sport srest
    read -r sport srest < "$RUN/state"
    if { [ -z "$PORT" ] || [ "$PORT" = "$sport" ]; } && \
       [ "$srest" = "$REGION $key $S3_SECRET $WORKERS $COMPAT" ] && \
       "$PY" -I "$HELPER" ready "$HOST" "$sport" "http://$HOST:$sport" "$REGION" "$key" "$S3_SECRET" 5 2>/dev/null; then
      log "already running at http://$HOST:$sport (data: $DIR)"
      print_env "$sport" "$REGION" "$key" "$S3_SECRET"
      return 0
    fi
  fi
  if [ "$(running_count)" != 0 ]; then
    log "restarting (settings changed or instance unhealthy)"
    stop_servers
  fi

  ensure_installed
  touch "$MARKER"
  mkdir -p "$RUN" "$LOGD"
  write_helper

  # a port picked here could be taken by someone else before Swift binds it: try again
  local attempt tries=1
  [ -n "$PORT" ] || tries=3
  for attempt in $(seq 1 "$tries"); do
    start_once && return 0
    [ "$attempt" = "$tries" ] || log "start attempt $attempt failed, trying again with other ports"
  done
  die "Swift did not become ready (logs: $LOGD)"
}

start_once() {  # 0 when ready; 1 (servers stopped) when not
  local key="$S3_ACCOUNT:$S3_USER" port=$PORT
  local free aport cport oport mport
  free=$("$PY" -I "$HELPER" freeports "$HOST" 5)
  set -- $free
  [ -n "$port" ] || port=$5
  aport=${SWIFT_S3_ACCOUNT_PORT:-$1}
  cport=${SWIFT_S3_CONTAINER_PORT:-$2}
  oport=${SWIFT_S3_OBJECT_PORT:-$3}
  mport=$4
  local endpoint="http://$HOST:$port" p
  for p in "$port" "$aport" "$cport" "$oport"; do
    "$PY" -I "$HELPER" port_free "$HOST" "$p" || { log "port $HOST:$p is already in use"; return 1; }
  done
  for p in "$aport" "$cport" "$oport"; do
    [ "$p" != "$port" ] || die "internal port $p equals the S3 port"
  done

  write_configs "$port" "$aport" "$cport" "$oport" "$mport"
  "$PY" -I "$HELPER" rings "$ETC" "$HOST" "$aport" "$cport" "$oport" \
    || die "building rings failed"

  local s pids=""
  for s in $SERVERS; do
    # no `setsid` command here: the helper calls setsid() itself, so $! is the
    # server's pid whatever job control the calling shell uses
    # 9>&-: the servers must not inherit (and hold) the lock on $DIR/.lock
    "$PY" -I "$HELPER" server "$ETC" "$s" "$ETC/$s.conf" \
      >>"$LOGD/$s.log" 2>&1 </dev/null 9>&- &
    echo $! > "$RUN/$s.pid"
    pids="$pids${pids:+,}$!"
  done
  log "started servers (pids $pids), waiting for $endpoint"

  if ! "$PY" -I "$HELPER" ready "$HOST" "$aport,$cport,$oport,$port" "$endpoint" \
        "$REGION" "$key" "$S3_SECRET" "$TIMEOUT" "$pids"; then
    for s in $SERVERS; do
      log "---- last lines of $LOGD/$s.log"
      tail -n 15 "$LOGD/$s.log" >&2 || true
    done
    stop_servers
    return 1
  fi
  echo "$port $REGION $key $S3_SECRET $WORKERS $COMPAT" > "$RUN/state"
  print_env "$port" "$REGION" "$key" "$S3_SECRET" > "$RUN/env.sh"
  log "ready at $endpoint (data: $DIR, logs: $LOGD, env: $RUN/env.sh)"
  print_env "$port" "$REGION" "$key" "$S3_SECRET"
}

case "$CMD" in
  start) start ;;
  stop)
    [ -d "$DIR" ] || { log "no data directory $DIR"; exit 0; }
    with_lock; stop_servers ;;
  status)
    [ -f "$RUN/state" ] && [ "$(running_count)" = 4 ] || { log "not running"; exit 1; }
    read -r sport sregion skey ssecret _ < "$RUN/state"
    "$PY" -I "$HELPER" ready "$HOST" "$sport" "http://$HOST:$sport" "$sregion" "$skey" "$ssecret" 5 \
      && log "running at http://$HOST:$sport" ;;
  env)
    [ -f "$RUN/state" ] && [ "$(running_count)" = 4 ] || die "not running"
    read -r sport sregion skey ssecret _ < "$RUN/state"
    print_env "$sport" "$sregion" "$skey" "$ssecret" ;;
  clean)
    [ -d "$DIR" ] || exit 0
    [ -f "$MARKER" ] || die "$DIR was not created by this script, not deleting it"
    with_lock; stop_servers
    rm -rf "${DIR:?}/etc" "$DIR/srv" "$DIR/run" "$DIR/log" "$DIR/bin" "$MARKER" "$DIR/.lock"
    rmdir "$DIR" 2>/dev/null || true
    log "removed $DIR" ;;
esac
