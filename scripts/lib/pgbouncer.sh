# PgBouncer for the local stack, sourced by stack.sh: production reaches Postgres through
# Neon's pooler (PgBouncer, transaction mode, max_prepared_statements=1000), so the local stack
# and the tests go through the same kind of pooler. Debian bookworm's package (1.18) predates
# prepared statements in transaction mode (1.21), so a pinned release is built from source once
# and cached next to the cargo target dir.

PGBOUNCER_VERSION=1.24.1
PGBOUNCER_MIN_VERSION=1.21
# Debian's copy of the upstream release tarball (byte-identical to pgbouncer.org's); the hash is
# upstream's, pinned here so a tampered or truncated download is refused.
PGBOUNCER_SOURCE_URL=${PGBOUNCER_SOURCE_URL:-https://deb.debian.org/debian/pool/main/p/pgbouncer/pgbouncer_${PGBOUNCER_VERSION}.orig.tar.gz}
PGBOUNCER_SHA256=da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0
PGBOUNCER_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ai-calling-backend/pgbouncer

# pgbouncer_usable BINARY: it runs (its shared libraries are present) and is recent enough.
pgbouncer_usable() {
  local version
  version=$("$1" --version 2>/dev/null | awk '/^PgBouncer /{print $2; exit}') || return 1
  [ -n "$version" ] && [ "$(printf '%s\n%s\n' "$PGBOUNCER_MIN_VERSION" "$version" | sort -V | head -n1)" = "$PGBOUNCER_MIN_VERSION" ]
}

# ensure_pgbouncer: sets PGBOUNCER_BIN to a usable pgbouncer: PGBOUNCER_BIN if given, else one
# on PATH, else the cached build (made now if missing; concurrent runs take turns).
ensure_pgbouncer() {
  local candidate
  for candidate in "${PGBOUNCER_BIN:-}" "$(command -v pgbouncer || true)" "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer"; do
    if [ -n "$candidate" ] && pgbouncer_usable "$candidate"; then
      PGBOUNCER_BIN=$candidate
      return
    fi
  done
  mkdir -p "$PGBOUNCER_CACHE"
  (
    flock 9
    pgbouncer_usable "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer" && exit 0
    build_pgbouncer
  ) 9>"$PGBOUNCER_CACHE/.lock" || die "could not build PgBouncer $PGBOUNCER_VERSION (see above)"
  PGBOUNCER_BIN="$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer"
}

# The build dependencies are Debian packages; apt-get runs only when one of them is missing.
pgbouncer_build_deps() {
  local missing=()
  command -v make >/dev/null && command -v cc >/dev/null || missing+=(build-essential)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  pkg-config --exists libevent 2>/dev/null || missing+=(libevent-dev)
  pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
  [ ${#missing[@]} = 0 ] && return 0
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  command -v apt-get >/dev/null || { log "install ${missing[*]} (no apt-get here)"; return 1; }
  log "installing PgBouncer's build dependencies: ${missing[*]}"
  local output
  output=$("${sudo[@]}" apt-get update -qq 2>&1 \
    && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1) || {
    printf '%s\n' "$output" >&2
    return 1
  }
}

build_pgbouncer() {
  local started=$SECONDS work
  log "building PgBouncer $PGBOUNCER_VERSION into ${PGBOUNCER_CACHE} (once; about a minute)"
  pgbouncer_build_deps || return 1
  work=$(mktemp -d "$PGBOUNCER_CACHE/build.XXXXXX")
  # A failed or interrupted build leaves nothing behind that a later run would take as done.
  # Runs in ensure_pgbouncer's subshell, whose exit comes after this function's locals are
  # gone: the path is put in the trap now.
  trap "rm -rf -- '$work'" EXIT
  curl -fsSL --retry 3 --retry-connrefused -o "$work/source.tar.gz" "$PGBOUNCER_SOURCE_URL" || {
    log "could not download $PGBOUNCER_SOURCE_URL"
    return 1
  }
  echo "$PGBOUNCER_SHA256  $work/source.tar.gz" | sha256sum --check --quiet - || {
    log "$PGBOUNCER_SOURCE_URL does not have the pinned sha256 $PGBOUNCER_SHA256"
    return 1
  }
  tar -xzf "$work/source.tar.gz" -C "$work" || return 1
  # c-ares is only for asynchronous DNS of server host names; the local pooler uses an IP.
  (cd "$work/pgbouncer-$PGBOUNCER_VERSION" && ./configure --without-cares && make -j"$(nproc)") \
    >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log" >&2
    return 1
  }
  pgbouncer_usable "$work/pgbouncer-$PGBOUNCER_VERSION/pgbouncer" || {
    log "the built pgbouncer does not run"
    return 1
  }
  mkdir -p "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION"
  # Renamed into place, so the cached binary is either absent or complete.
  cp "$work/pgbouncer-$PGBOUNCER_VERSION/pgbouncer" "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer.new"
  mv -f "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer.new" "$PGBOUNCER_CACHE/$PGBOUNCER_VERSION/pgbouncer"
  log "PgBouncer $PGBOUNCER_VERSION built in $((SECONDS - started)) s"
}

# start_pgbouncer PORT POSTGRES_PORT: PgBouncer on 127.0.0.1:PORT in front of the local
# Postgres, configured like Neon's pooler where it matters to the code (transaction pooling,
# protocol-level prepared statements tracked). Any database name is passed through. It runs on
# its own, so it stays up while the outage tests stop and start Postgres behind it.
start_pgbouncer() {
  local port=$1 postgres_port=$2 dir="$STATE/pgbouncer"
  ensure_pgbouncer
  rm -rf "$dir"
  mkdir -p "$dir"
  local binary=$PGBOUNCER_BIN
  if [ "$(id -u)" = 0 ]; then
    # PgBouncer refuses to run as root; the postgres user may not reach root's cache.
    cp "$PGBOUNCER_BIN" "$dir/pgbouncer"
    binary="$dir/pgbouncer"
    chown -R postgres "$dir"
  fi
  # trust, like the local cluster; the auth file only lists who may log in.
  echo '"postgres" ""' >"$dir/users.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$postgres_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
admin_users = postgres
pool_mode = transaction
max_prepared_statements = 1000
max_client_conn = 5000
; per database and user; the local cluster allows 300 connections
default_pool_size = 60
; after a failed server login PgBouncer refuses clients at once for this long before trying
; again (default 15 s); the outage tests restart Postgres in under a second
server_login_retry = 1
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  as_pg "$binary" -d "$dir/pgbouncer.ini" || die "PgBouncer did not start: see $dir/pgbouncer.log"
  local i
  for i in $(seq 1 100); do
    [ -s "$dir/pgbouncer.pid" ] && python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  [ -s "$dir/pgbouncer.pid" ] || die "PgBouncer did not start: see $dir/pgbouncer.log"
  STACK_PGBOUNCER_PID_FILE="$dir/pgbouncer.pid"
  log "PgBouncer $("$binary" --version | awk '/^PgBouncer /{print $2}') on 127.0.0.1:$port (transaction pooling) in front of Postgres on $postgres_port"
}

stop_pgbouncer() {
  [ -n "${STACK_PGBOUNCER_PID_FILE:-}" ] && [ -s "$STACK_PGBOUNCER_PID_FILE" ] || return 0
  local pid
  pid=$(cat "$STACK_PGBOUNCER_PID_FILE")
  # SIGQUIT is the immediate shutdown (SIGTERM waits for every client to disconnect).
  kill -QUIT "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  STACK_PGBOUNCER_PID_FILE=""
}
