# test/bench/cluster.sh: throwaway clusters for the benchmarks, sourced by
# test/bench/run and test/bench/compare.
#
#   bench_cluster NAME BINDIR   starts a cluster of the PostgreSQL in BINDIR
#                               with the benchmark's settings and sets
#                               NAME_host and NAME_port for clients, and
#                               NAME_data to its data directory
#   bench_clusters_stop         stops them all and removes their files
#                               (the caller runs it at exit:
#                               trap bench_clusters_stop EXIT)
#
# Everything the tables need stays in memory, checkpoints happen only when
# the benchmark asks for them, and nothing vacuums behind its back.  What
# is measured is CPU: the disk is kept out of it (no fsync, no full-page
# images), since its timing varies most from run to run on a shared
# machine.  A cluster listens only on a socket in its own directory, so
# any number of them can run at once.  initdb refuses to run as root: as
# root, the clusters run as the postgres user.

bench_cluster_dirs=()

bench_as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

bench_clusters_stop() {
  local d
  for d in "${bench_cluster_dirs[@]}"; do
    bench_as_server "$d/bin/pg_ctl" -D "$d/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$d"
  done
  bench_cluster_dirs=()
}

bench_cluster() {
  local name=$1 bindir=$2 dir
  dir=$(mktemp -d "/tmp/payout-bench-$name.XXXXXX")
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 755 "$dir"
  bench_cluster_dirs+=("$dir")
  ln -s "$bindir" "$dir/bin"
  bench_as_server "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; return 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
port = 5432
listen_addresses = ''
unix_socket_directories = '$dir'
shared_buffers = 2GB
max_wal_size = 20GB
checkpoint_timeout = 1h
fsync = off
full_page_writes = off
autovacuum = off
max_parallel_workers_per_gather = 0
jit = off
EOF
  bench_as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null \
    || { cat "$dir/server.log"; return 1; }
  printf -v "${name}_host" '%s' "$dir"
  printf -v "${name}_port" '%s' 5432
  printf -v "${name}_data" '%s' "$dir/data"
}
