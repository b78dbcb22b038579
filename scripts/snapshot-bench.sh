#!/usr/bin/env bash
# What cluster snapshots cost publishers: a 3-node cluster on this machine with a snapshot every SNAPSHOT_ENTRIES Raft
# log entries, `zaichik bench pub` of COUNT messages of 1,000 bytes (1,000 in flight) to a topic with an hour of
# retention, so the view grows to about COUNT KB per node. Prints the bench's row (msgs/s, latency percentiles in ms),
# the leader's view and snapshot folder sizes (du counts files the two share once), and every node's "snapshot taken" log lines (how long applying waited,
# what was copied and linked), and how long a follower restarted from its snapshot takes to catch up. Needs a Release build:
#   dotnet build Zaichik.sln -c Release && scripts/snapshot-bench.sh [count] [snapshot-entries]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
snap=${2:-200}
. scripts/bench-common.sh
peers=""; ports=(); admins=(); raft=($(free_port) $(free_port) $(free_port))
for n in 1 2 3; do peers+="n$n=127.0.0.1:${raft[$((n-1))]},"; ports+=("$(free_port)"); admins+=("$(free_port)"); done
for n in 1 2 3; do
  dotnet "$server" --port "${ports[$((n-1))]}" --data "$work/n$n" --admin "http://127.0.0.1:${admins[$((n-1))]}" \
    --node "n$n" --peers "${peers%,}" --Zaichik:Cluster:SnapshotEntries "$snap" > "$work/n$n.log" 2>&1 &
  pids+=("$!")
done
leader=""
for _ in $(seq 1 300); do
  for n in 1 2 3; do
    if curl -sf "http://127.0.0.1:${admins[$((n-1))]}/api/cluster?scope=local" 2>/dev/null | grep -q '"role":"Leader"'; then leader=$n; break 2; fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader"; tail -5 "$work/n1.log"; exit 1; }
dotnet "$cli" --server "127.0.0.1:${ports[$((leader-1))]}" create big --retention 1h > /dev/null
echo "Messages | Elapsed | msgs/s | MB/s | p50 | p90 | p99 | p99.9 | max"
dotnet "$cli" --server "127.0.0.1:${ports[$((leader-1))]}" bench pub big -n "$count" -s 1000 --inflight 1000 2>&1 | grep -E '^│ *[0-9]' | tail -1
# The last snapshot may still be completing: give it a moment before reading the logs.
sleep 3
du -sh "$work/n$leader/cluster/view" "$work/n$leader/cluster/snapshots"
grep -h "snapshot taken" "$work"/n*.log | sed -E 's/^.*(Cluster snapshot taken)/\1/'
# A follower restarted from its newest snapshot: how long until it has applied what the leader committed.
follower=$(( leader % 3 + 1 ))
kill -TERM "${pids[$((follower-1))]}"; wait "${pids[$((follower-1))]}" 2>/dev/null || true
target=$(curl -sf "http://127.0.0.1:${admins[$((leader-1))]}/api/cluster?scope=local" | python3 -c 'import json,sys; print(json.load(sys.stdin)["commitIndex"])')
start=$(python3 -c "import time; print(time.time())")
dotnet "$server" --port "${ports[$((follower-1))]}" --data "$work/n$follower" --admin "http://127.0.0.1:${admins[$((follower-1))]}" \
  --node "n$follower" --peers "${peers%,}" --Zaichik:Cluster:SnapshotEntries "$snap" > "$work/n$follower.restart.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 1200); do
  applied=$(curl -sf "http://127.0.0.1:${admins[$((follower-1))]}/api/cluster?scope=local" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["appliedIndex"])' 2>/dev/null || echo 0)
  [ "$applied" -ge "$target" ] && break
  sleep 0.05
done
python3 -c "import time; print('follower n$follower restarted and applied entry $target in %.2f s' % (time.time() - $start))"
