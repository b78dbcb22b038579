#!/usr/bin/env bash
# W1 with 1,000 publishes in flight against an Always topic: a single broker, a 3-node cluster, and a 3-node cluster
# with mutual TLS between the nodes, interleaved REPS times on this machine. Prints msgs/s and the brokers' CPU per
# message (user + system ticks from /proc, summed over the nodes). Needs a Release build:
#   dotnet build Zaichik.sln -c Release && scripts/cluster-bench.sh [count] [reps]
# WORKLOAD=group measures a consumer group instead: bench sub --group (publish while one member consumes and commits
# each message on its own, 100 in flight), single broker against a 3-node cluster, whose group state goes through Raft;
# WORKLOAD=sub the same with a plain subscription (the cost of the group's replication is the difference).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
reps=${2:-3}
. scripts/bench-common.sh
ticks() { local sum=0; for pid in "$@"; do set -- $(cut -d' ' -f14,15 "/proc/$pid/stat"); sum=$((sum + $1 + $2)); done; echo "$sum"; }
hz=$(getconf CLK_TCK)

# One authority and three node certificates for the TLS runs.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench cluster CA" \
  -keyout "$work/ca.key" -out "$work/ca.crt" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
for n in 1 2 3; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=n$n" -keyout "$work/n$n.key" -out "$work/n$n.csr" 2>/dev/null
  openssl x509 -req -in "$work/n$n.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 -out "$work/n$n.crt" \
    -extfile <(printf "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1") 2>/dev/null
done

# bench <label> <client port> <pids...>: one run, one line.
bench() {
  local label=$1 port=$2; shift 2
  local before after row
  before=$(ticks "$@")
  # The result table's data row: Messages | Elapsed | msgs/s | MB/s | p50 | p90 | p99 | p99.9 | max.
  if [ "${WORKLOAD:-pub}" != pub ]; then
    local group=(); [ "$WORKLOAD" = group ] && group=(--group bench)
    row=$(dotnet "$cli" --server "127.0.0.1:$port" bench sub -n "$count" --inflight 100 "${group[@]}" 2>&1 | grep -E '^│ *[0-9]' | tail -1)
  else
    row=$(dotnet "$cli" --server "127.0.0.1:$port" bench pub -n "$count" --inflight 1000 2>&1 | grep -E '^│ *[0-9]' | tail -1)
  fi
  after=$(ticks "$@")
  echo "$row" | awk -F'│' -v label="$label" -v cpu="$(python3 -c "print(round(($after-$before)/$hz/$count*1e6,1))")" \
    '{ gsub(/ /, "", $4); gsub(/ /, "", $6); gsub(/ /, "", $8); printf "%-12s %9s msgs/s  p50 %8s ms  p99 %8s ms  cpu/msg %6s us\n", label, $4, $6, $8, cpu }'
}

single() {
  local port; port=$(free_port)
  dotnet "$server" --port "$port" --data "$work/single-$1" --admin "" --Zaichik:Durability Always > "$work/single-$1.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  for _ in $(seq 1 100); do grep -q "listening on" "$work/single-$1.log" && break; sleep 0.1; done
  bench "single" "$port" "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

cluster() { # cluster <label> <rep> [tls]
  local label=$1 rep=$2 tls=${3:-} peers="" ports=() admins=() nodes=() n
  local raft=($(free_port) $(free_port) $(free_port))
  for n in 1 2 3; do peers+="n$n=127.0.0.1:${raft[$((n-1))]},"; ports+=("$(free_port)"); admins+=("$(free_port)"); done
  for n in 1 2 3; do
    local extra=()
    [ -n "$tls" ] && extra=(--Zaichik:Cluster:Tls:CertificatePath "$work/n$n.crt" --Zaichik:Cluster:Tls:KeyPath "$work/n$n.key" --Zaichik:Cluster:Tls:TrustedCaPath "$work/ca.crt")
    dotnet "$server" --port "${ports[$((n-1))]}" --data "$work/$label-$rep-n$n" --admin "http://127.0.0.1:${admins[$((n-1))]}" \
      --node "n$n" --peers "${peers%,}" --Zaichik:Durability Always "${extra[@]}" > "$work/$label-$rep-n$n.log" 2>&1 &
    nodes+=("$!"); pids+=("$!")
  done
  local leader=""
  for _ in $(seq 1 300); do
    for n in 1 2 3; do
      if curl -sf "http://127.0.0.1:${admins[$((n-1))]}/api/cluster?scope=local" 2>/dev/null | grep -q '"role":"Leader"'; then leader=$n; break 2; fi
    done
    sleep 0.1
  done
  [ -n "$leader" ] || { echo "$label: no leader"; tail -5 "$work/$label-$rep-n1.log"; return 1; }
  bench "$label" "${ports[$((leader-1))]}" "${nodes[@]}"
  kill "${nodes[@]}"; wait "${nodes[@]}" 2>/dev/null || true
}

for rep in $(seq 1 "$reps"); do
  single "$rep"
  cluster cluster "$rep"
  [ "${WORKLOAD:-pub}" != pub ] || cluster cluster-tls "$rep" tls
done
