#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the demo and the benchmarks, in a private data directory
# on a private port; never the system's cluster.
#   pg-local.sh start DIR   -> prints the port; superuser "postgres", trust auth on 127.0.0.1
#   pg-local.sh stop DIR
set -euo pipefail
bindir=/usr/lib/postgresql/15/bin
cmd=${1:?usage: pg-local.sh start|stop DIR}
dir=${2:?usage: pg-local.sh start|stop DIR}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
start)
  [ -x "$bindir/initdb" ] || { echo "pg-local: PostgreSQL 15 is missing: apt-get install postgresql" >&2; exit 1; }
  mkdir -p "$dir"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
    start >/dev/null
  echo "$port" > "$dir/port"
  echo "$port"
  ;;
stop)
  [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: pg-local.sh start|stop DIR" >&2; exit 2 ;;
esac
