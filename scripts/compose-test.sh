#!/usr/bin/env bash
# End-to-end test of the Docker packaging: builds the images with
# docker-compose.yml (deploy/docker/Dockerfile), checks them (the hub's is
# at most 30 MB, none has a shell or runs as root), starts the stack (hub,
# two demo agents, the motion detector, web viewer), waits until the
# viewer's /api/cams shows both cameras live, checks that the health checks
# (the programs' own healthcheck commands) say healthy, that the detector
# finds motion, and that a real Prometheus scrapes every program with the
# monitoring profile's configuration and answers every query of the Grafana
# dashboard (deploy/grafana) for both cameras; then restarts the
# hub and checks that both agents come back live by themselves (without being
# restarted) and that the hub's file-backed replay buffer kept the frames
# from before the restart. The stack is secured as the hub is by default: the
# test checks that the hub requires TLS and a login, and that the agents
# joined over TLS with the tokens the init service wrote. Always ends with
# `down -v`.
#
# Needs a Docker engine and docker compose (v2) or docker-compose (v1).
# With no registry, deploy/docker/base-images.sh makes the base images.
# The Go modules for the image build come from this machine's module cache,
# served to the build over HTTP on the docker bridge (CAMHUB_GOPROXY
# overrides: e.g. CAMHUB_GOPROXY=https://proxy.golang.org to use the real one).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[compose-test %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s; }

command -v jq >/dev/null || { if [ "$(id -u)" = 0 ]; then apt-get install -y jq; else sudo apt-get install -y jq; fi; }
command -v curl >/dev/null || die "curl is needed"

if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose_cmd=(docker-compose)
else
	die "neither docker compose nor docker-compose is installed"
fi
log "docker compose (v2): $(docker compose version 2>&1 | head -1)"
log "docker-compose (v1): $(docker-compose version --short 2>&1 | head -1)"
log "using: ${compose_cmd[*]}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

project=camhubtest$$
export COMPOSE_PROJECT_NAME=$project
export CAMHUB_BIND=127.0.0.1
export CAMHUB_HTTP_PORT=${CAMHUB_HTTP_PORT:-$(free_port)}
export CAMHUB_NATS_PORT=${CAMHUB_NATS_PORT:-$(free_port)}
compose() { "${compose_cmd[@]}" "$@"; }

proxy_pid=
prom_pid=
cleanup() {
	rc=$?
	if [ $rc != 0 ]; then
		log "logs of the failed run:"
		compose ps >&2 || true
		compose logs --tail 30 >&2 || true
	fi
	log "down -v"
	compose down -v --remove-orphans >&2 || true
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
	[ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null || true
	exit $rc
}
trap cleanup EXIT

t0=$(now)
deploy/docker/base-images.sh
t_base=$(( $(now) - t0 ))

if [ -z "${CAMHUB_GOPROXY:-}" ]; then
	go mod download
	gw=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
	[ -n "$gw" ] || gw=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
	[ -n "$gw" ] || die "cannot find the docker bridge's address"
	# A fixed port keeps the build's cache (GOPROXY is a build arg).
	port=${CAMHUB_MODPROXY_PORT:-38111}
	python3 -m http.server --bind "$gw" --directory "$(go env GOMODCACHE)/cache/download" "$port" >/dev/null 2>&1 &
	proxy_pid=$!
	deadline=$(( $(now) + 10 ))
	until curl -fsS -o /dev/null "http://$gw:$port/"; do
		[ "$(now)" -lt "$deadline" ] || die "module cache server on $gw:$port did not start (port taken? set CAMHUB_MODPROXY_PORT)"
		sleep 0.2
	done
	export CAMHUB_GOPROXY=http://$gw:$port
	log "Go modules for the build from this machine's module cache: $CAMHUB_GOPROXY"
fi

t0=$(now)
log "build"
compose build
t_build=$(( $(now) - t0 ))

# The images: one per program, small, no shell, not root.
tag=${CAMHUB_TAG:-latest}
sizes=
for i in hub agent viewer detector admin; do
	img=camhub-$i:$tag
	size=$(docker image inspect -f '{{.Size}}' "$img") || die "no image $img"
	sizes+=" $i $((size / 1000000))MB"
	[ "$i" = admin ] && continue
	user=$(docker image inspect -f '{{.Config.User}}' "$img")
	[ "$user" = 10001:44 ] || die "$img runs as '$user', not 10001:44"
	if docker run --rm --entrypoint /bin/sh "$img" -c true >/dev/null 2>&1; then die "$img has a shell"; fi
done
hub_size=$(docker image inspect -f '{{.Size}}' "camhub-hub:$tag")
[ "$hub_size" -le 30000000 ] || die "camhub-hub is $hub_size bytes, more than 30 MB"
docker run --rm "camhub-agent:$tag" --version >&2 || die "the agent does not start in its image"
log "images (no shell, uid 10001):$sizes"

t0=$(now)
log "up -d (viewer on 127.0.0.1:$CAMHUB_HTTP_PORT, NATS on 127.0.0.1:$CAMHUB_NATS_PORT)"
compose up -d
api=http://127.0.0.1:$CAMHUB_HTTP_PORT/api/cams
# The web viewer asks for a login (the hub has users): the init service made
# the user web and printed its password once, as the README says to find it.
webpw=$(compose logs --no-color init 2>&1 | sed -n 's/.*Web login password for "web" ([^)]*): \([^[:space:]]*\).*/\1/p' | tail -n 1)
[ -n "$webpw" ] || die "the init service printed no web password"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api" || true)
[ "$code" = 401 ] || log "/api/cams without a login answered $code (the viewer may still be starting)"
curl() { command curl -u "web:$webpw" "$@"; }

# wait_live DEADLINE_SECONDS SINCE_EPOCH_SECONDS: until both demo cameras are
# live with a frame captured after SINCE.
wait_live() {
	local deadline=$(( $(now) + $1 )) since=$2 body
	while :; do
		body=$(curl -fsS --max-time 3 "$api" 2>/dev/null || true)
		if [ -n "$body" ] && jq -e --argjson since "$since" '
			[.[] | select((.id == "demo1" or .id == "demo2") and .state == "live" and .signal
				and ((.frame_time // "1970-01-01T00:00:00Z") | sub("\\.[0-9]+"; "") | fromdateiso8601) >= $since)]
			| length == 2' <<<"$body" >/dev/null 2>&1; then
			return 0
		fi
		[ "$(now)" -lt "$deadline" ] || { log "last /api/cams: $body"; return 1; }
		sleep 1
	done
}

wait_live 120 "$t0" || die "both cameras not live within 120 s of up"
t_up=$(( $(now) - t0 ))
log "both cameras live ($t_up s after up)"
curl -fsS "$api" | jq -c '.[] | {id, state, fps, rx_fps, source}' >&2

# Secure by default: the hub's NATS port requires TLS and a login (its INFO
# line, the first thing it sends, says so) ...
exec 3<>"/dev/tcp/127.0.0.1/$CAMHUB_NATS_PORT" || die "cannot reach the hub's NATS port"
info=$(head -n 1 <&3 | tr -d '\r')
exec 3<&- 3>&-
grep -q '"tls_required":true' <<<"$info" || die "the hub does not require TLS: $info"
grep -q '"auth_required":true' <<<"$info" || die "the hub does not require a login: $info"
# ... and the agents joined with their tokens, over TLS, as the camera alone.
for s in agent-demo1 agent-demo2; do
	# (grep reads to the end: with -q an early match would kill compose
	# logs with SIGPIPE, and pipefail would call that a failure)
	compose logs --no-color "$s" 2>&1 | grep 'msg="connected to NATS".*url=tls://hub:4222' >/dev/null || die "$s did not connect over TLS"
done
log "the hub requires TLS and a login; the agents joined over TLS"
code=$(command curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api")
[ "$code" = 401 ] || die "/api/cams without a login answered $code, want 401"
log "the web viewer asks for a login"

# Compose services are healthy (the health checks work).
for s in hub agent-demo1 agent-demo2 viewer; do
	deadline=$(( $(now) + 60 ))
	until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "$s")")" = healthy ]; do
		[ "$(now)" -lt "$deadline" ] || die "$s not healthy within 60 s"
		sleep 1
	done
done
log "all four services healthy (their healthcheck commands)"

# The detector (the hub image has none) connected and finds motion in the
# moving test pictures: events in the hub's EVENTS stream.
compose logs --no-color detector 2>&1 | grep 'msg="connected to NATS".*url=tls://hub:4222' >/dev/null || die "the detector did not connect over TLS"
deadline=$(( $(now) + 90 ))
until events=$(compose exec -T viewer viewer events --json 2>/dev/null) &&
	jq -e 'map(.camera // .cam // .id) | length > 0' <<<"$events" >/dev/null 2>&1; do
	[ "$(now)" -lt "$deadline" ] || die "no motion event within 90 s: ${events:-nothing}"
	sleep 1
done
log "the detector found motion: $(jq -c '.[0]' <<<"$events")"

# Monitoring: Prometheus (Debian's, on this machine: the profile's image
# cannot be pulled here) with the profile's configuration, its targets the
# containers' addresses on the stack's network; every query of the Grafana
# dashboard must return data for both cameras.
prom_dir=$(mktemp -d)
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(compose ps -q "$1")"; }
compose run --rm -T --no-deps --entrypoint cat init /metrics-secret/password >"$prom_dir/password" 2>/dev/null ||
	die "init kept no password for Prometheus"
[ -s "$prom_dir/password" ] || die "init kept an empty password for Prometheus"
sed -e "s/scrape_interval: 10s/scrape_interval: 2s/" \
	-e "s|/etc/prometheus/secret/password|$prom_dir/password|" \
	-e "s/\"hub:9100\"/\"$(ip_of hub):9100\"/" \
	-e "s/\"agent-demo1:9101\"/\"$(ip_of agent-demo1):9101\"/" \
	-e "s/\"agent-demo2:9101\"/\"$(ip_of agent-demo2):9101\"/" \
	-e "s/\"viewer:8080\"/\"$(ip_of viewer):8080\"/" deploy/grafana/prometheus.yml >"$prom_dir/prometheus.yml"
promtool check config "$prom_dir/prometheus.yml" >/dev/null || die "promtool rejects the configuration"
prom_port=$(free_port)
prometheus --config.file="$prom_dir/prometheus.yml" --storage.tsdb.path="$prom_dir/data" \
	--web.listen-address="127.0.0.1:$prom_port" >"$prom_dir/log" 2>&1 &
prom_pid=$!
prom=http://127.0.0.1:$prom_port
deadline=$(( $(now) + 60 ))
until targets=$(command curl -fsS "$prom/api/v1/targets" 2>/dev/null) &&
	jq -e '.data.activeTargets | length == 4 and all(.health == "up")' <<<"$targets" >/dev/null; do
	[ "$(now)" -lt "$deadline" ] || die "Prometheus's targets not all up within 60 s: $(jq -c '[.data.activeTargets[]? | {job: .labels.job, health, lastError}]' <<<"${targets:-{\}}")"
	sleep 1
done
log "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'): all 4 targets up (hub, 2 agents, web viewer)"
# The dashboard's queries, with Grafana's variables as Grafana would fill
# them: every camera, a rate window of a few scrapes.
jq -r '.. | objects | select(has("expr")) | .expr' deploy/grafana/camhub.json >"$prom_dir/queries"
nq=$(wc -l <"$prom_dir/queries")
[ "$nq" -ge 10 ] || die "the dashboard has $nq queries"
while read -r q; do
	expr=${q//\$camera/.*}
	expr=${expr//\$__rate_interval/20s}
	deadline=$(( $(now) + 60 ))
	while :; do
		res=$(command curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$expr" 2>/dev/null || true)
		if [[ $q == *'$camera'* ]]; then
			jq -e '.status == "success" and ([.data.result[].metric.camera] | index("demo1") and index("demo2"))' <<<"$res" >/dev/null 2>&1 && break
		else
			jq -e '.status == "success" and (.data.result | length > 0)' <<<"$res" >/dev/null 2>&1 && break
		fi
		[ "$(now)" -lt "$deadline" ] || die "dashboard query returns no data for both cameras: $expr: $res"
		sleep 1
	done
done <"$prom_dir/queries"
log "all $nq queries of the Grafana dashboard return data for both cameras"
kill "$prom_pid"
wait "$prom_pid" 2>/dev/null || true
prom_pid=
rm -rf "$prom_dir"

# Restart the hub; the agents must reconnect by themselves.
a1=$(compose ps -q agent-demo1) a2=$(compose ps -q agent-demo2)
started1=$(docker inspect -f '{{.State.StartedAt}}' "$a1")
started2=$(docker inspect -f '{{.State.StartedAt}}' "$a2")
sleep_until=$(( $(now) + 3 )) # the buffer must hold a few seconds before the restart
while [ "$(now)" -lt "$sleep_until" ]; do sleep 0.5; done
before=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(now)
log "restart hub"
compose restart hub
wait_live 90 "$(now)" || die "both cameras not live again within 90 s of restarting the hub"
t_back=$(( $(now) - t0 ))
log "both cameras live again ($t_back s after the hub restart)"
[ "$(docker inspect -f '{{.State.StartedAt}}' "$a1")" = "$started1" ] || die "agent-demo1 was restarted"
[ "$(docker inspect -f '{{.State.StartedAt}}' "$a2")" = "$started2" ] || die "agent-demo2 was restarted"
[ "$(docker inspect -f '{{.RestartCount}}' "$a1")" = 0 ] || die "agent-demo1 restarted by docker"
[ "$(docker inspect -f '{{.RestartCount}}' "$a2")" = 0 ] || die "agent-demo2 restarted by docker"
log "agents were not restarted"

# The replay buffer is file-backed: frames from before the restart are still there.
compose exec -T viewer viewer export --cam demo1 \
	--to "$before" --out /tmp/before.avi >&2 || die "no frames from before the hub restart"
# (the image has no stat, nor any other tool: copy the clip out)
clip=$(mktemp)
docker cp "$(compose ps -q viewer):/tmp/before.avi" "$clip" || die "cannot copy the clip out of the viewer"
size=$(stat -c %s "$clip")
rm -f "$clip"
[ "$size" -gt 1000 ] || die "export of frames before the restart is $size bytes"
log "frames from before the restart survived it (export: $size bytes)"

# down (keeping the volume) and up again: the buffer survives that too.
t0=$(now)
log "down (volume kept), up -d"
compose down
compose up -d
wait_live 120 "$(now)" || die "both cameras not live within 120 s of up after down"
t_reup=$(( $(now) - t0 ))
compose exec -T viewer viewer export --cam demo2 \
	--to "$before" --out /tmp/before.avi >&2 || die "no frames from before down/up"
log "frames from before down/up survived it"

log "PASS: base images ${t_base}s, build ${t_build}s, live ${t_up}s after up, ${t_back}s after hub restart, ${t_reup}s for down+up"
