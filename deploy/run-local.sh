#!/usr/bin/env bash
# Starts a controller and one local agent enrolled to it, with all data under
# RUN_DIR (default .run/). Ctrl-C stops both. Works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-$PWD/.run}
HTTP_ADDR=${RSGO_HTTP_ADDR:-127.0.0.1:8080}
AGENT_ADDR=${RSGO_AGENT_ADDR:-127.0.0.1:8443}
ENV_NAME=${ENV_NAME:-local}
mkdir -p "$RUN_DIR"
ctl="$RUN_DIR/controller"
agent="$RUN_DIR/agent"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

catalog_flags=()
[ -d deploy/demo/catalog ] && catalog_flags=(--catalog "demo=$PWD/deploy/demo/catalog")

./bin/rsgo-controller --data-dir "$ctl" --http-addr "$HTTP_ADDR" --agent-addr "$AGENT_ADDR" \
	"${catalog_flags[@]}" >"$RUN_DIR/controller.out" 2> >(tee -a "$RUN_DIR/controller.log" >&2) &
pids+=($!)

for _ in $(seq 1 100); do
	curl -fsS "http://$HTTP_ADDR/api/health" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://$HTTP_ADDR/api/health" >/dev/null || { echo "controller did not come up; see $RUN_DIR/controller.log" >&2; exit 1; }
TOKEN=$(cat "$ctl/admin-token")
auth=(-H "Authorization: Bearer $TOKEN")

if [ ! -f "$agent/agent.json" ]; then
	resp=$(curl -fsS "${auth[@]}" -X POST "http://$HTTP_ADDR/api/environments" -d "{\"name\":\"$ENV_NAME\"}" 2>/dev/null ||
		curl -fsS "${auth[@]}" -X POST "http://$HTTP_ADDR/api/environments/$ENV_NAME/join-token")
	join=$(printf '%s' "$resp" | sed -n 's/.*"joinToken":"\([^"]*\)".*/\1/p')
	./bin/rsgo-agent join --state-dir "$agent" --token "$join"
fi
./bin/rsgo-agent run --state-dir "$agent" 2> >(tee -a "$RUN_DIR/agent.log" >&2) &
pids+=($!)

cat <<MSG

  rsgo is running.
    API / UI:     http://$HTTP_ADDR
    Admin token:  $TOKEN
    Agent port:   $AGENT_ADDR (environment "$ENV_NAME")
    Data:         $RUN_DIR

  Try:  curl -H "Authorization: Bearer $TOKEN" http://$HTTP_ADDR/api/environments
  Ctrl-C stops both processes.

MSG
wait -n "${pids[@]}"
