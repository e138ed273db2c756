#!/usr/bin/env bash
# A two-node Ray cluster on this one machine, `catalog-report serve` joining it, one report, and
# where its render tasks ran; then everything this script started is stopped again.
#
#   cluster/local-multinode.sh            # run the whole recipe (about a minute)
#   KEEP=1 cluster/local-multinode.sh     # leave it running; stop later with: cluster/local-multinode.sh down
#
# Safe next to other Ray instances on the machine: no port is 6379 or a Ray default, each node
# has its own --temp-dir under $BASE (so `ray.init()` elsewhere never finds this cluster), and
# teardown kills only the processes whose command line names that directory (and their worker
# children), by pid. It never runs the global `ray stop`.
#
# The embedded backends (DuckDB, SQLite queue, local files) work here because both "nodes"
# share one filesystem. Across real machines use pubsub:// + gs:// + redshift:// (see
# cluster/kuberay-rayservice.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
BASE=${BASE:-/tmp/crmn}            # keep short: Ray's unix socket paths must stay under 108 bytes
GCS_PORT=${GCS_PORT:-6390}         # never 6379
DASH_PORT=${DASH_PORT:-8290}       # dashboard: the state API (`ray list …`) and `serve deploy` use it
HTTP_PORT=${HTTP_PORT:-8390}       # Serve proxy on the head node
WORKER_HTTP_PORT=${WORKER_HTTP_PORT:-8391}  # Serve proxy on the worker node, if a replica lands there
                                            # (Serve starts non-head proxies only where replicas run)
RAY=$VENV/bin/ray
CLI=$VENV/bin/catalog-report

export REPORTS_DATA_DIR=$BASE/data
export REPORTS_JWT_SECRET=${REPORTS_JWT_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')}
export REPORTS_CHUNK_ROWS=${REPORTS_CHUNK_ROWS:-100}   # small chunks, so both nodes get render work
export RAY_ADDRESS=127.0.0.1:$GCS_PORT
export RAY_worker_niceness=0   # API at normal priority; bulk work lowers itself (actors/runtime/priority.py)
export RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=serve_app.front.proxy_middlewares  # JSON + fair share in the proxy
# Ray 2.60 enables token authentication by default; give this cluster its own token, shared by
# both nodes, the service and the `ray list` calls (all started from this shell's environment).
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN=${RAY_AUTH_TOKEN:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}

our_pids() {  # Ray processes of this recipe: command line names $BASE/ray-*, plus their children
  local roots
  roots=$(pgrep -f -- "$BASE/ray-" || true)
  for p in $roots; do echo "$p"; pgrep -P "$p" || true; done | sort -un
}

down() {
  echo "== stopping"
  if [[ -f $BASE/serve.pid ]] && kill -0 "$(cat "$BASE/serve.pid")" 2>/dev/null; then
    kill -INT "$(cat "$BASE/serve.pid")"          # catalog-report serve: serve.shutdown(), ray.shutdown()
    for _ in $(seq 30); do kill -0 "$(cat "$BASE/serve.pid")" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$BASE/serve.pid"
  local pids alive
  pids=$(our_pids)   # taken once: a worker whose raylet has gone is no longer its child
  if [[ -n $pids ]]; then
    echo "   SIGTERM to $(echo "$pids" | wc -l) processes of this cluster"
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 20); do
      alive=$(for p in $pids; do kill -0 "$p" 2>/dev/null && echo "$p"; done || true)
      [[ -z $alive ]] && break; sleep 0.5
    done
    [[ -n $alive ]] && { echo "   SIGKILL to" $alive; kill -KILL $alive 2>/dev/null || true; }
  fi
  echo "   left running: $(our_pids | wc -l) processes"
}

if [[ ${1:-} == down ]]; then down; exit 0; fi
[[ ${KEEP:-0} == 1 ]] || trap down EXIT

mkdir -p "$BASE"
echo "== head node: 127.0.0.1:$GCS_PORT, 1 CPU"
$RAY start --head --node-ip-address 127.0.0.1 --port "$GCS_PORT" --num-cpus 1 \
  --temp-dir "$BASE/ray-head" \
  --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$DASH_PORT" \
  --dashboard-agent-listen-port 52390 --dashboard-agent-grpc-port 52391 \
  --metrics-export-port 52392 --runtime-env-agent-port 52393 --ray-client-server-port 10390 \
  --min-worker-port 20000 --max-worker-port 20199 \
  --disable-usage-stats 2>&1 | grep -E "Ray runtime started|Local node IP|ray start --address" || true

echo "== worker node on the same machine: 2 CPUs, its own temp dir and ports"
RAY_SERVE_WORKER_PROXY_HTTP_PORT=$WORKER_HTTP_PORT \
$RAY start --address "127.0.0.1:$GCS_PORT" --node-ip-address 127.0.0.1 --num-cpus 2 \
  --temp-dir "$BASE/ray-worker" \
  --dashboard-agent-listen-port 52394 --dashboard-agent-grpc-port 52395 \
  --metrics-export-port 52396 --runtime-env-agent-port 52397 \
  --min-worker-port 20200 --max-worker-port 20399 \
  --disable-usage-stats 2>&1 | grep -E "Ray runtime started|Local node IP" || true

$RAY list nodes --format table 2>/dev/null | grep -E "NODE_ID|ALIVE" | cut -c1-120 || true

echo "== catalog-report serve joining RAY_ADDRESS=$RAY_ADDRESS (port $HTTP_PORT)"
$CLI serve --host 127.0.0.1 --port "$HTTP_PORT" >"$BASE/serve.log" 2>&1 &
echo $! >"$BASE/serve.pid"
for _ in $(seq 120); do  # `serve` prints this once the application is running
  grep -q "serving at" "$BASE/serve.log" 2>/dev/null && break
  kill -0 "$(cat "$BASE/serve.pid")" 2>/dev/null || { cat "$BASE/serve.log"; exit 1; }
  sleep 1
done
grep -E "serving at|no warehouse" "$BASE/serve.log" || true
echo "GET /healthz -> $(curl -s "http://127.0.0.1:$HTTP_PORT/healthz")"

echo "== one report"
TOKEN=$($CLI token --institution-id 1 --user-id 7 --subdomain demo 2>/dev/null)
JOB=$(curl -s -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$HTTP_PORT/institution/reports/catalog?start_date=2025-01-01&end_date=2026-12-31")
echo "request -> $JOB"
ID=$(echo "$JOB" | $VENV/bin/python -c 'import json,sys; print(json.load(sys.stdin)["results"]["id"])')
for _ in $(seq 120); do
  STATUS=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/institution/reports/jobs/$ID")
  echo "$STATUS" | grep -qE '"status":"(done|failed)"' && break
  sleep 0.5
done
echo "status -> $STATUS" | cut -c1-220
echo "$STATUS" | grep -q '"status":"done"'
W=$(curl -s --max-time 2 "http://127.0.0.1:$WORKER_HTTP_PORT/healthz" || true)
echo "worker node's proxy :$WORKER_HTTP_PORT/healthz -> ${W:-(none: no replica on the worker node this time)}"

echo "== where the actors and the render tasks ran"
$VENV/bin/python - <<'EOF'
import time
from collections import Counter
from ray.util.state import list_actors, list_nodes, list_tasks

nodes = {n.node_id: ("head" if n.is_head_node else "worker") for n in list_nodes()}
actors = list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
print(f"{'class':<42} {'node':<7} {'node_id':<14} pid")
for a in sorted(actors, key=lambda a: (a.class_name, a.name or "")):
    print(f"{a.class_name:<42} {nodes.get(a.node_id, '?'):<7} {a.node_id[:12]:<14} {a.pid}")
for _ in range(30):  # task events reach the state API a few seconds after the tasks end
    tasks = list_tasks(filters=[("name", "=", "render-chunk")], limit=10000)
    by_node = Counter(nodes.get(t.node_id, "?") for t in tasks if t.state == "FINISHED")
    if set(by_node) == {"head", "worker"}:
        break
    time.sleep(0.5)
print(f"render-chunk tasks finished per node: {dict(by_node)}")
assert set(by_node) == {"head", "worker"}, "render tasks did not run on both nodes"
EOF
tail -1 "$REPORTS_DATA_DIR/notifications.jsonl" | cut -c1-160
