#!/usr/bin/env bash
# A private MariaDB server for fault tests: its own data folder, port and socket, never the machine's server.
#
#   scripts/mariadb-private.sh start   DIR   create DIR/data (mariadb-install-db --no-defaults) and start a
#                                            server on a free loopback port; prints MYSQL_URL=mysql://root@…
#   scripts/mariadb-private.sh kill    DIR   kill -9 the server (the data folder and port are kept)
#   scripts/mariadb-private.sh restart DIR   start it again on the same data folder and port, wait until it answers
#   scripts/mariadb-private.sh stop    DIR   SIGTERM, wait (kill after 30 s), then remove DIR
#   scripts/mariadb-private.sh status  DIR   exit 0 when the server answers
#
# DIR holds data/, error.log, pid and port. Runs as root (`--user=root`): the test machine has no mysql
# account of its own to spare, and the folder is private anyway.
set -euo pipefail

log() { printf 'mariadb-private.sh: %s\n' "$*" >&2; }
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { sed -n '2,12p' "$0"; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

answers() {
  mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$(cat "$dir/port")" -uroot \
    --connect-timeout=1 ping >/dev/null 2>&1
}

launch() {
  local port; port=$(cat "$dir/port")
  # Durable settings (flush at each commit, doublewrite on) so that a kill -9 loses nothing committed.
  nohup mariadbd --no-defaults --user=root \
    --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-name-resolve --max-connections=400 --innodb-buffer-pool-size=128M \
    --innodb-flush-log-at-trx-commit=1 --innodb-lock-wait-timeout=50 \
    >>"$dir/stdout.log" 2>&1 &
  echo $! > "$dir/pid"
  local deadline=$((SECONDS + 60))
  until answers; do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "mariadbd exited during startup; last lines of $dir/error.log:"; tail -n 30 "$dir/error.log" >&2 || true
      exit 1
    fi
    if (( SECONDS > deadline )); then log "mariadbd did not answer within 60 s"; exit 1; fi
    sleep 0.2
  done
  log "private MariaDB ready on 127.0.0.1:$port (pid $(cat "$dir/pid"), data in $dir/data)"
  echo "MYSQL_URL=mysql://root@127.0.0.1:$port"
}

running() { [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "$cmd" in
  start)
    if running && answers; then echo "MYSQL_URL=mysql://root@127.0.0.1:$(cat "$dir/port")"; exit 0; fi
    if [[ ! -d "$dir/data/mysql" ]]; then
      mkdir -p "$dir/data"
      mariadb-install-db --no-defaults --user=root --datadir="$dir/data" --auth-root-authentication-method=normal \
        --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    fi
    [[ -f "$dir/port" ]] || free_port > "$dir/port"
    launch
    ;;
  kill)
    if running; then
      pid=$(cat "$dir/pid")
      kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    ;;
  restart)
    if running; then log "already running"; echo "MYSQL_URL=mysql://root@127.0.0.1:$(cat "$dir/port")"; exit 0; fi
    launch
    ;;
  stop)
    if running; then
      pid=$(cat "$dir/pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then log "mariadbd $pid ignored SIGTERM for 30 s; killing it"; kill -KILL "$pid" || true; fi
    fi
    rm -rf "$dir"
    ;;
  status) running && answers ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
