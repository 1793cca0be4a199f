# Shared by scripts/dev and scripts/test: installs what is missing and starts the local stack
# (Postgres, moto, simulators, the API) in a git-ignored state folder. Every process started
# here is stopped by stack_stop, which the callers run on exit, Ctrl-C and SIGTERM.
# Any variable set before the script (DATABASE_URL, JWKS_URL, AWS_ENDPOINT_URL, ...) wins over
# its local default.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$ROOT/.local/venv"
# Build output lives in the user's cache so a fresh checkout (CI) reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-calling-backend/target}
BIN="$CARGO_TARGET_DIR/debug"
STACK_PIDS=()
STACK_PG_DIR=""
source "$ROOT/scripts/lib/pgbouncer.sh"

log() { printf '\033[1;34m[%s]\033[0m %s\n' "${STACK_NAME:-stack}" "$*" >&2; }
die() { printf '\033[1;31m[%s] %s\033[0m\n' "${STACK_NAME:-stack}" "$*" >&2; exit 1; }

# free_port: a port nothing listens on and that this run has not handed out yet. Ports are
# asked for before anything binds them, and the kernel can give the same free port twice in a
# row (Postgres and PgBouncer once got one port between them), so the run's ports are noted.
free_port() {
  python3 - "$STATE/ports" <<'EOF'
import socket, sys
given = set(open(sys.argv[1]).read().split())
while True:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    if port not in given:
        break
with open(sys.argv[1], "a") as ports:
    ports.write(port + "\n")
print(port)
EOF
}

# stack_init NAME: state folder .local/NAME, wiped of what a previous run left.
stack_init() {
  STACK_NAME=$1
  STATE="$ROOT/.local/$1"
  mkdir -p "$STATE/logs"
  : >"$STATE/ports"
  # ensure the postgres user (when we switch to it) can reach the folder
  chmod 755 "$ROOT/.local" "$STATE"
}

# install_venv VENV REQUIREMENTS WHAT: a venv holding exactly REQUIREMENTS (reinstalled when
# the file changes; concurrent runs take turns).
install_venv() {
  local venv=$1 req=$2 what=$3 stamp="$1/.requirements"
  mkdir -p "$ROOT/.local"
  (
    flock 9
    if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then exit 0; fi
    log "installing $what into ${venv#"$ROOT/"}"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" || exit 1
    cp "$req" "$stamp"
  ) 9>"$venv.lock" || die "could not install $what"
}

ensure_venv() {
  install_venv "$VENV" "$ROOT/infra/local/requirements.txt" "the Python tools (moto, cfn-lint, cargo-lambda)"
}

# The API fuzzer, in a venv of its own (its pins differ from moto's and cfn-lint's).
SCHEMATHESIS_VENV="$ROOT/.local/venv-schemathesis"
ensure_schemathesis() {
  install_venv "$SCHEMATHESIS_VENV" "$ROOT/infra/local/schemathesis-requirements.txt" schemathesis
}

# fuzz_api: schemathesis over every route of the running stack's OpenAPI document, as an
# admin (so the admin routes are reached too), failing on any 5xx answer. Secret rotation is
# left out: a fuzzed value would replace the keys the simulators sign with.
fuzz_api() {
  local token
  token=$(STACK=$STACK_NAME "$ROOT/scripts/dev-token" "fuzz-$$@example.test" --admin) || return 1
  # Run from the state folder: schemathesis keeps its caches in the working directory.
  (cd "$STATE" && "$SCHEMATHESIS_VENV/bin/schemathesis" run "$API_URL/api/openapi.json" --url "$API_URL" \
    -H "Authorization: Bearer $token" --checks not_a_server_error \
    --exclude-path-regex '^/admin/config/secrets' \
    --workers 1 --max-examples "${FUZZ_EXAMPLES:-15}" --rate-limit 15/s --request-timeout 30 \
    --generation-database none \
    --report junit --report-dir "$STATE/schemathesis" --no-color)
}

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
  done
  command -v "$1" || die "PostgreSQL binary $1 not found (install postgresql-15)"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  as_pg "$(pg_bin pg_ctl)" -D "$1" -l "$1/server.log" -w -t 60 start \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null
}

pg_stop() {
  as_pg "$(pg_bin pg_ctl)" -D "$1" -m fast -w stop >/dev/null 2>&1
}

# start_postgres PORT PGBOUNCER_PORT: a throwaway cluster on PORT behind PgBouncer on
# PGBOUNCER_PORT, unless DATABASE_URL is already set. DATABASE_URL goes through the pooler, as
# deployed code does through Neon's; DATABASE_DIRECT_URL reaches Postgres itself, for what needs
# a session (migrations, the outage tests' pg-ctl).
start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL from the environment"
    return
  fi
  local port=$1 dir="$STATE/pg"
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$(pg_bin initdb)" -D "$dir" -U postgres --auth=trust -E UTF8 --no-locale >"$STATE/logs/initdb.log" 2>&1 \
    || die "initdb failed: see $STATE/logs/initdb.log"
  pg_start "$dir" "$port" || die "Postgres did not start: see $dir/server.log"
  STACK_PG_DIR=$dir
  export PG_DATA_DIR=$dir
  "$(pg_bin createdb)" -h 127.0.0.1 -p "$port" -U postgres app || die "createdb failed"
  export DATABASE_DIRECT_URL="postgres://postgres@127.0.0.1:$port/app"
  log "Postgres 15 on 127.0.0.1:$port ($dir)"
  start_pgbouncer "$2" "$port"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$2/app"
}

# start_kept_postgres PORT PGBOUNCER_PORT RESEED: like start_postgres (PgBouncer included), but
# the cluster in $STATE/pg (and so a bench's seeded data) survives the run; RESEED=1 throws it
# away first.
start_kept_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL from the environment"
    return
  fi
  local port=$1 dir="$STATE/pg" fresh=0
  if [ "$3" = 1 ] || [ ! -f "$dir/PG_VERSION" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$(pg_bin initdb)" -D "$dir" -U postgres --auth=trust -E UTF8 --no-locale >"$STATE/logs/initdb.log" 2>&1 \
      || die "initdb failed: see $STATE/logs/initdb.log"
    # Room for the dataset's hot part (about 2 GB on disk) and a quicker seed.
    cat >>"$dir/postgresql.conf" <<CONF
shared_buffers = 1GB
maintenance_work_mem = 256MB
max_wal_size = 4GB
CONF
    fresh=1
  fi
  pg_start "$dir" "$port" || die "Postgres did not start: see $dir/server.log"
  STACK_PG_DIR=$dir
  if [ "$fresh" = 1 ]; then
    "$(pg_bin createdb)" -h 127.0.0.1 -p "$port" -U postgres app || die "createdb failed"
  fi
  export DATABASE_DIRECT_URL="postgres://postgres@127.0.0.1:$port/app"
  log "Postgres 15 on 127.0.0.1:$port ($dir, kept between runs)"
  start_pgbouncer "$2" "$port"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$2/app"
}

random_hex() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

# Local values for the keys the app secret holds, unless given: generated per run, never committed.
# The simulators sign with the same values the API verifies with.
local_secrets() {
  export ELEVENLABS_API_KEY=${ELEVENLABS_API_KEY:-local_el_$(random_hex)}
  export ELEVENLABS_WEBHOOK_SECRET=${ELEVENLABS_WEBHOOK_SECRET:-wsec_local_$(random_hex)}
  export CONTACT_LOOKUP_SECRET=${CONTACT_LOOKUP_SECRET:-cl_local_$(random_hex)}
  export STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY:-sk_test_local_$(random_hex)}
  export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_local_$(random_hex)}
  export STACK_SECRET_SERVER_KEY=${STACK_SECRET_SERVER_KEY:-ssk_local_$(random_hex)}
}

# Starts moto unless AWS_ENDPOINT_URL is already set, then creates the resources.
start_aws() {
  export AWS_REGION=${AWS_REGION:-us-east-1}
  if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    local port=$1
    export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$STATE/logs/moto.log" 2>&1 &
    STACK_PIDS+=($!)
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    wait_http "$AWS_ENDPOINT_URL/moto-api/" moto
    log "moto (SQS, DynamoDB, S3, Secrets Manager) on $AWS_ENDPOINT_URL"
  else
    log "using AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL from the environment"
  fi
  eval "$("$VENV/bin/python" "$ROOT/infra/local/bootstrap_aws.py")" || die "could not create the AWS resources"
}

# start_simulators STACK_PORT ELEVENLABS_PORT API_PORT: the API's port is where simulated
# ElevenLabs and Stripe webhooks are delivered. The Stripe simulator listens on STRIPE_SIM_PORT
# (a free port unless set). The API calls the Stack Auth simulator's REST API (STACK_API_URL)
# with STACK_SECRET_SERVER_KEY (from local_secrets, also in the app secret); tokens keep the
# hosted issuer, so JWT_ISSUER is pinned to it rather than derived from STACK_API_URL.
start_simulators() {
  local port=$1
  export STACK_PROJECT_ID=${STACK_PROJECT_ID:-local-project}
  export SIM_STATE_DIR="$STATE/sim" STACK_SIM_PORT=$port
  export STACK_SIM_URL="http://127.0.0.1:$port"
  export STACK_API_URL=${STACK_API_URL:-$STACK_SIM_URL}
  export JWT_ISSUER=${JWT_ISSUER:-"https://api.stack-auth.com/api/v1/projects/$STACK_PROJECT_ID"}
  export ELEVENLABS_SIM_PORT=$2
  export ELEVENLABS_SIM_URL="http://127.0.0.1:$2"
  export ELEVENLABS_BASE_URL=${ELEVENLABS_BASE_URL:-$ELEVENLABS_SIM_URL}
  export WEBHOOK_TARGET_URL="http://127.0.0.1:$3"
  export STRIPE_SIM_PORT=${STRIPE_SIM_PORT:-$(free_port)}
  export STRIPE_SIM_URL="http://127.0.0.1:$STRIPE_SIM_PORT"
  export STRIPE_BASE_URL=${STRIPE_BASE_URL:-$STRIPE_SIM_URL}
  export STRIPE_WEBHOOK_URL="http://127.0.0.1:$3/billing/webhook/stripe"
  "$BIN/simulators" >"$STATE/logs/simulators.log" 2>&1 &
  STACK_PIDS+=($!)
  wait_http "$STACK_SIM_URL/health" simulators
  export JWKS_URL=${JWKS_URL:-"$STACK_SIM_URL/api/v1/projects/$STACK_PROJECT_ID/.well-known/jwks.json"}
  wait_http "$ELEVENLABS_SIM_URL/v1/convai/phone-numbers" "ElevenLabs simulator" -H "xi-api-key: $ELEVENLABS_API_KEY"
  wait_http "$STRIPE_SIM_URL/health" "Stripe simulator"
  log "Stack Auth simulator on $STACK_SIM_URL, ElevenLabs simulator on $ELEVENLABS_SIM_URL, Stripe simulator on $STRIPE_SIM_URL"
}

# start_smtp_sink PORT: a local SMTP server that keeps every message it receives in the
# Maildir MAIL_SINK_DIR (tests read it); the API sends there without TLS or login.
start_smtp_sink() {
  export MAIL_SINK_DIR="$STATE/mail" SMTP_SINK_PID_FILE="$STATE/smtp-sink.pid"
  # The sink creates the Maildir (with its tmp/new/cur) only when the folder does not exist.
  rm -rf "$MAIL_SINK_DIR"
  export SMTP_HOST=127.0.0.1 SMTP_PORT=$1 SMTP_TLS=none
  export EMAIL_FROM=${EMAIL_FROM:-"AI Calling <no-reply@ai-calling.local>"}
  smtp_sink_up
  log "SMTP sink on 127.0.0.1:$SMTP_PORT (messages in $MAIL_SINK_DIR)"
}

# smtp_sink_up / smtp_sink_down: (re)start or stop the sink (scripts/lib/smtp-sink, for the
# outage test). Its pid lives in SMTP_SINK_PID_FILE, so stack_stop finds a restarted one too.
smtp_sink_up() {
  "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$MAIL_SINK_DIR" \
    >>"$STATE/logs/smtp-sink.log" 2>&1 &
  echo $! >"$SMTP_SINK_PID_FILE"
  local i
  for i in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  die "the SMTP sink did not start on port $SMTP_PORT"
}

smtp_sink_down() {
  [ -f "$SMTP_SINK_PID_FILE" ] || return 0
  local pid
  pid=$(cat "$SMTP_SINK_PID_FILE")
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$SMTP_SINK_PID_FILE"
}

migrate() {
  "$BIN/local" migrate >"$STATE/logs/migrate.log" 2>&1 || { cat "$STATE/logs/migrate.log" >&2; die "migrations failed"; }
}

start_api() {
  export PORT=$1
  export API_URL="http://127.0.0.1:$PORT"
  "$BIN/local" serve >"$STATE/logs/api.log" 2>&1 &
  # Exported for benches that read the API's memory from /proc.
  export STACK_API_PID=$!
  STACK_PIDS+=($STACK_API_PID)
  wait_http "$API_URL/health" API
  log "API on $API_URL (logs: $STATE/logs/api.log)"
}

wait_http() {
  local url=$1 what=$2 i
  shift 2
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$what did not answer at $url: see $STATE/logs"
}

# Writes the stack's addresses for helpers such as scripts/dev-token.
write_env_file() {
  {
    for name in API_URL DATABASE_URL DATABASE_DIRECT_URL STACK_SIM_URL STACK_API_URL JWT_ISSUER STACK_SECRET_SERVER_KEY \
      SIM_STATE_DIR STACK_PROJECT_ID JWKS_URL AWS_ENDPOINT_URL \
      AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY WEBHOOK_QUEUE_URL WEBHOOK_DLQ_URL DYNAMODB_TABLE \
      RECORDINGS_BUCKET APP_SECRET_ID WEBHOOK_SECRET_ID ELEVENLABS_SIM_URL ELEVENLABS_BASE_URL ELEVENLABS_API_KEY \
      ELEVENLABS_WEBHOOK_SECRET CONTACT_LOOKUP_SECRET STRIPE_WEBHOOK_SECRET STRIPE_SIM_URL STRIPE_BASE_URL \
      MAIL_SINK_DIR SMTP_HOST SMTP_PORT SMTP_SINK_PID_FILE PG_DATA_DIR; do
      printf "export %s='%s'\n" "$name" "${!name:-}"
    done
  } >"$STATE/env"
}

stack_stop() {
  local pid
  [ -n "${SMTP_SINK_PID_FILE:-}" ] && smtp_sink_down
  for pid in "${STACK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  STACK_PIDS=()
  stop_pgbouncer
  if [ -n "$STACK_PG_DIR" ]; then
    pg_stop "$STACK_PG_DIR" || true
    STACK_PG_DIR=""
  fi
}

# For scripts/bench-*: the release build (the deployed profile) unless --debug is among the
# arguments; the others are the bench's own, kept in BENCH_ARGS.
bench_options() {
  # A bench drives one tenant far past what a person would: no per-tenant request limit.
  export TENANT_RATE_BURST=${TENANT_RATE_BURST:-100000} TENANT_RATE_PER_SECOND=${TENANT_RATE_PER_SECOND:-100000}
  BENCH_PROFILE=release
  BENCH_CARGO_PROFILE=()
  BENCH_ARGS=()
  local arg
  for arg in "$@"; do
    case $arg in
      --debug) BENCH_PROFILE=debug BENCH_CARGO_PROFILE=(--profile dev) ;;
      *) BENCH_ARGS+=("$arg") ;;
    esac
  done
}

# bench_build BENCH PACKAGE...: builds the packages (the stack's binaries) and the bench target
# BENCH of integration-tests in BENCH_PROFILE, and points BIN at that profile's binaries.
# Two cargo calls: target flags such as --bench would limit every -p of the same call.
bench_build() {
  local bench=$1 package packages=()
  shift
  for package in "$@"; do packages+=(-p "$package"); done
  log "== build ($BENCH_PROFILE)"
  if [ "$BENCH_PROFILE" = release ]; then
    cargo build --release --locked "${packages[@]}" || die "build failed"
    BIN="$CARGO_TARGET_DIR/release"
  else
    cargo build --locked "${packages[@]}" || die "build failed"
  fi
  cargo bench --locked "${BENCH_CARGO_PROFILE[@]}" -p integration-tests --bench "$bench" --no-run \
    || die "build failed"
}

# bench_run BENCH: runs the bench target (built by bench_build) with BENCH_ARGS.
bench_run() {
  log "== bench ($BENCH_PROFILE build, $(nproc) CPUs, pool size ${DATABASE_POOL_SIZE:-4})"
  cargo bench --locked "${BENCH_CARGO_PROFILE[@]}" -p integration-tests --bench "$1" -- "${BENCH_ARGS[@]}"
}
