#!/usr/bin/env bash
# End-to-end test of the Raspberry Pi packaging (deploy/pi, scripts/release.sh):
#
#  1. release.sh cross-compiles agent, hub and viewer for arm64 and armhf
#     (sysroots cached in /var/tmp/camhub-sysroot) and packs them.
#  2. Each cross-built agent runs under qemu-user (qemu-<arch>-static with the
#     sysroot's libraries) with --source testpattern against a local amd64
#     hub; its frames must arrive, and decode (Go's image/jpeg) as JPEGs of
#     the size asked for.
#  3. systemd-analyze verify accepts the unit, installed in a scratch root
#     with the agent binary its ExecStart names; any warning fails.
#  4. deploy/pi/install.sh installs, over real SSH, a native build of the
#     agent on a "Pi": a Debian bookworm container running systemd as PID 1
#     and sshd, without OpenCV (install.sh must apt-get it). The unit must be
#     active, run as camhub with the hardening in force, be restarted after
#     a crash, and the hub must get that camera's frames. Then the owner edits
#     the settings on the Pi, and install.sh updates to a new build: the edit
#     is kept (and in effect), the new version runs; a third run changes
#     nothing and restarts nothing. Then: a camera without settings fails
#     the run and says why; --replace-configs; settings not edited on the
#     Pi follow the laptop's; a second camera on a hub secured by hand
#     (--auth users and --tls-cert) gets its password and CA (never logged)
#     and streams.
# The hub runs secured as by default: every camera and the viewer join it
# with a token from `hub camera add` / `hub user add`, and install.sh takes
# the Pi's camera token (never logged).
#
# Usage: scripts/pi-test.sh [--help]
# Environment:
#   CAMHUB_PI_TEST_ARCHES  cross-built architectures to test (default arm64,armhf)
#   CAMHUB_PI_TEST_DOCKER  0 skips step 4 (default: run it; fails without Docker)
#   CAMHUB_SYSROOT_DIR     see scripts/release.sh --help
# Needs root or sudo (apt-get, debootstrap), Go, and Docker with a local
# debian:bookworm-slim (deploy/docker/base-images.sh makes one without a
# registry). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
[ $# = 0 ] || { echo "usage: scripts/pi-test.sh [--help]" >&2; exit 2; }

log() { printf '[pi-test %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need() { # need CMD PACKAGE
	command -v "$1" >/dev/null && return 0
	log "installing $2"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
		{ as_root apt-get update -qq >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; } ||
		die "cannot install $2"
}

arches=${CAMHUB_PI_TEST_ARCHES:-arm64,armhf}
use_docker=${CAMHUB_PI_TEST_DOCKER:-1}
sysroot_base=${CAMHUB_SYSROOT_DIR:-/var/tmp/camhub-sysroot}
pi_image=camhub-pi-sim:bookworm

need jq jq
need systemd-analyze systemd
need ssh openssh-client
need ssh-keygen openssh-client
need openssl openssl

work=$(mktemp -d /tmp/camhub-pi-test.XXXXXX)
pids=()
container=
cleanup() {
	local rc=$?
	set +e
	if [ $rc != 0 ] && [ -n "$container" ]; then
		log "the Pi's journal (last 40 lines):"
		docker exec "$container" journalctl -q -n 40 --no-pager >&2
	fi
	if [ $rc != 0 ] && [ -f "$work/hub.log" ]; then
		log "hub log (last 10 lines):"
		tail -n 10 "$work/hub.log" >&2
	fi
	[ -n "$container" ] && docker rm -f "$container" >/dev/null 2>&1
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
	[ $rc = 0 ] || log "FAILED (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$(now)

# ---- 1. release -------------------------------------------------------------
t0=$(now)
log "release.sh --arch $arches (cross-compiled)"
scripts/release.sh --arch "$arches" --out "$work/dist" --version pitest-cross
t_cross=$(($(now) - t0))
t0=$(now)
# Native builds: the hub and viewer the test runs here, and two versions of
# the agent for the "Pi" in the container (an update needs a new version).
log "release.sh --arch amd64, versions pitest-1 and pitest-2 (native)"
scripts/release.sh --arch amd64 --out "$work/dist1" --version pitest-1
scripts/release.sh --arch amd64 --out "$work/dist2" --version pitest-2 --programs agent
t_native=$(($(now) - t0))
bin=$work/dist1/camhub-pitest-1-linux-amd64/bin
for f in "$work"/dist/SHA256SUMS "$work"/dist1/camhub-pitest-1-linux-amd64.tar.gz; do
	[ -s "$f" ] || die "release.sh did not write $f"
done
(cd "$work/dist" && sha256sum --quiet -c SHA256SUMS) || die "SHA256SUMS does not match the release"
for a in ${arches//,/ }; do
	tar -tzf "$work/dist/camhub-pitest-cross-linux-$a.tar.gz" >"$work/list"
	for f in bin/agent bin/hub bin/viewer runtime-packages VERSION SHA256SUMS \
		deploy/pi/install.sh deploy/pi/setup-pi.sh deploy/pi/camhub-agent@.service \
		deploy/pi/README.md deploy/pi/examples/agent-front.yaml; do
		grep -qx "camhub-pitest-cross-linux-$a/$f" "$work/list" || die "the $a archive has no $f"
	done
	log "$a: $(du -h "$work/dist/camhub-pitest-cross-linux-$a.tar.gz" | cut -f1) archive; binaries: $(cd "$work/dist/camhub-pitest-cross-linux-$a/bin" && du -h agent hub viewer | tr '\t\n' ': ')"
done

# A full decode with Go's own image/jpeg: "WxH" of a JPEG file.
mkdir -p "$work/jpegsize"
cat >"$work/jpegsize/main.go" <<'EOF'
package main

import (
	"fmt"
	"image/jpeg"
	"os"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img, err := jpeg.Decode(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	fmt.Printf("%dx%d\n", img.Bounds().Dx(), img.Bounds().Dy())
}
EOF
(cd "$work/jpegsize" && go mod init jpegsize >/dev/null 2>&1 && go build -o "$work/jpegsize.bin" .) || die "cannot build the JPEG check"

# ---- the hub ----------------------------------------------------------------
# Reachable from the container too when Docker is used: on the docker
# bridge's own address (this machine), else on loopback.
hub_addr=127.0.0.1
if [ "$use_docker" != 0 ]; then
	command -v docker >/dev/null || die "docker is needed (CAMHUB_PI_TEST_DOCKER=0 skips the install test)"
	hub_addr=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
	[ -n "$hub_addr" ] || hub_addr=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
	[ -n "$hub_addr" ] || die "cannot find the docker bridge's address"
fi
hub_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats=tls://$hub_addr:$hub_port
# Secured as by default, from its data directory: the cameras and the viewer
# join with the tokens hub camera add and hub user add print.
hubdata=$work/hubdata
mkdir -p "$work/cfg"
for a in ${arches//,/ }; do
	"$bin/hub" camera add "qemu-$a" --data "$hubdata" --advertise "$hub_addr:$hub_port" >"$work/qemu-$a.join" 2>/dev/null
done
"$bin/hub" camera add door --data "$hubdata" --advertise "$hub_addr:$hub_port" >"$work/cfg/door.join" 2>/dev/null
"$bin/hub" user add tester --role viewer --data "$hubdata" --advertise "$hub_addr:$hub_port" >"$work/viewer.join" 2>/dev/null
"$bin/hub" --listen "$hub_addr:$hub_port" --monitor "" --data "$hubdata" >"$work/hub.log" 2>&1 &
pids+=($!)
log "hub on $nats (secured from $hubdata)"

# How the viewer reaches the hub the cameras under test send to.
vargs=(--join-file "$work/viewer.join" --state-dir "$work/viewer-state")
# cam_json ID: the camera's entry in `viewer list --json`, or nothing.
cam_json() {
	"$bin/viewer" list --json "${vargs[@]}" 2>/dev/null | jq -c --arg id "$1" '.[] | select(.id == $id)' || true
}
# wait_cam ID VERSION WxH DEADLINE_S: until the hub has the camera live, at
# that version and size, sending frames; then a snapshot must decode at WxH.
wait_cam() {
	local id=$1 version=$2 size=$3 deadline=$(($(now) + $4)) j got
	while :; do
		j=$(cam_json "$id")
		if [ -n "$j" ] && jq -e --arg v "$version" --arg s "$size" \
			'.state == "live" and .version == $v and "\(.width)x\(.height)" == $s and .frames_sent >= 3' <<<"$j" >/dev/null; then
			break
		fi
		[ "$(now)" -lt "$deadline" ] || die "camera $id not live at $version $size within $4 s; the hub says: ${j:-nothing}"
		sleep 0.5
	done
	"$bin/viewer" snapshot "${vargs[@]}" --cam "$id" --out "$work/$id.jpg" >&2 || die "no snapshot of $id"
	got=$("$work/jpegsize.bin" "$work/$id.jpg") || die "the snapshot of $id does not decode as JPEG"
	[ "$got" = "$size" ] || die "$id's frame decodes as $got, not $size"
	log "camera $id: live, version $version, host $(jq -r .host <<<"$j"), $(jq -r .frames_sent <<<"$j") frames sent; snapshot decodes as $got JPEG"
}

# ---- 2. the cross-built agents under qemu -----------------------------------
t0=$(now)
for a in ${arches//,/ }; do
	case $a in arm64) q=qemu-aarch64-static ;; armhf) q=qemu-arm-static ;; *) die "no qemu for $a" ;; esac
	QEMU_LD_PREFIX=$sysroot_base/$a "$q" "$work/dist/camhub-pitest-cross-linux-$a/bin/agent" \
		--join-file "$work/qemu-$a.join" --state-dir "$work/state-qemu-$a" \
		--source testpattern --size 320x240 --fps 5 >"$work/qemu-$a.log" 2>&1 &
	pids+=($!)
	log "$a agent under $q (pid $!)"
done
for a in ${arches//,/ }; do
	wait_cam "qemu-$a" pitest-cross 320x240 120 || { cat "$work/qemu-$a.log" >&2; exit 1; }
done
t_qemu=$(($(now) - t0))

# ---- 3. systemd-analyze verify -------------------------------------------------
root=$work/root
mkdir -p "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/etc/systemd/system"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp deploy/pi/camhub-agent@.service "$root/etc/systemd/system/"
cp "$work/dist/camhub-pitest-cross-linux-${arches%%,*}/bin/agent" "$root/usr/local/bin/camhub-agent"
out=$(systemd-analyze verify --root="$root" camhub-agent@front.service 2>&1) || die "systemd-analyze verify: $out"
[ -z "$out" ] || die "systemd-analyze verify warns: $out"
rm "$root/usr/local/bin/camhub-agent" # it must notice a missing binary
if systemd-analyze verify --root="$root" camhub-agent@front.service >/dev/null 2>&1; then
	die "systemd-analyze verify passes without the binary: it checks nothing"
fi
log "systemd-analyze verify: camhub-agent@front.service is clean ($(systemd-analyze --version | head -1))"

if [ "$use_docker" = 0 ]; then
	log "PASS (without the install test: CAMHUB_PI_TEST_DOCKER=0): cross ${t_cross}s, native ${t_native}s, qemu ${t_qemu}s, all $(($(now) - t_start))s"
	exit 0
fi

# ---- 4. install.sh against a "Pi" with systemd and sshd --------------------------
t0=$(now)
if ! docker image inspect "$pi_image" >/dev/null 2>&1; then
	docker image inspect debian:bookworm-slim >/dev/null 2>&1 || deploy/docker/base-images.sh
	log "building $pi_image (Debian bookworm with systemd, sshd, sudo; no OpenCV)"
	# The user "pi" may sudo without a password, as on Raspberry Pi OS.
	docker build -t "$pi_image" - >"$work/image.log" 2>&1 <<-'EOF' || { tail -n 20 "$work/image.log" >&2; die "cannot build $pi_image"; }
		FROM debian:bookworm-slim
		RUN apt-get update \
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		      systemd systemd-sysv dbus openssh-server sudo \
		 && rm -rf /var/lib/apt/lists/* \
		 && useradd --create-home --shell /bin/bash pi \
		 && echo 'pi ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/010_pi-nopasswd \
		 && systemctl enable ssh
		STOPSIGNAL SIGRTMIN+3
		CMD ["/sbin/init"]
	EOF
fi
t_image=$(($(now) - t0))

# systemd as PID 1 needs CAP_SYS_ADMIN (mounts, and the units' namespaces)
# and no seccomp filter; its own cgroup namespace keeps it off the host's.
container=camhub-pi-sim-$$
docker run -d --name "$container" --hostname pi-sim --cgroupns private --cap-add SYS_ADMIN \
	--security-opt seccomp=unconfined --security-opt apparmor=unconfined \
	--tmpfs /run --tmpfs /run/lock "$pi_image" >/dev/null || die "cannot start the Pi container"
deadline=$(($(now) + 60))
until state=$(docker exec "$container" systemctl is-system-running 2>/dev/null) || [ "$state" = degraded ]; do
	[ "$(now)" -lt "$deadline" ] || die "systemd in the container is not up within 60 s: $state"
	sleep 0.5
done
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$container")
log "Pi container $container: systemd $state, at $ip"

ssh-keygen -q -t ed25519 -N '' -f "$work/id_pi" -C camhub-pi-test
docker exec "$container" install -d -m 0700 -o pi -g pi /home/pi/.ssh
docker cp "$work/id_pi.pub" "$container:/home/pi/.ssh/authorized_keys"
docker exec "$container" chown pi:pi /home/pi/.ssh/authorized_keys
cat >"$work/ssh_config" <<EOF
Host pi-sim
	HostName $ip
	User pi
	IdentityFile $work/id_pi
	IdentitiesOnly yes
	StrictHostKeyChecking accept-new
	UserKnownHostsFile $work/known_hosts
	LogLevel ERROR
EOF
export CAMHUB_SSH="ssh -F $work/ssh_config"
deadline=$(($(now) + 30))
until $CAMHUB_SSH -o BatchMode=yes -o ConnectTimeout=2 pi-sim true 2>/dev/null; do
	[ "$(now)" -lt "$deadline" ] || die "cannot ssh to the Pi container"
	sleep 0.5
done

pi() { docker exec "$container" "$@"; }
# door joins with its token (cfg/door.join): no hub address or password here.
cat >"$work/cfg/agent-door.yaml" <<EOF
source: testpattern
size: 320x240
fps: 5
EOF
install_run() { # install_run N DIST ARGS...: runs install.sh, output in $work/install-N.log
	local n=$1 dist=$2 t rc=0
	shift 2
	t=$(now)
	deploy/pi/install.sh --dist "$dist" --config-dir "$work/cfg" "$@" >"$work/install-$n.log" 2>&1 || rc=$?
	sed 's/^/    | /' "$work/install-$n.log" >&2
	log "install.sh run $n: exit $rc in $(($(now) - t)) s"
	return $rc
}

# Run 1: a fresh Pi.
install_run 1 "$work/dist1" pi-sim:door || die "install.sh (first run) failed"
grep -q 'camera door: started; settings installed' "$work/install-1.log" || die "run 1 did not start door"
grep -q 'packages: installing .*libopencv-core406' "$work/install-1.log" || die "run 1 did not install OpenCV"
[ "$(pi systemctl is-active camhub-agent@door)" = active ] || die "camhub-agent@door is not active"
[ "$(pi systemctl is-enabled camhub-agent@door)" = enabled ] || die "camhub-agent@door is not enabled"
wait_cam door pitest-1 320x240 60
pid=$(pi systemctl show -p MainPID --value camhub-agent@door)
perm=$(pi stat -c '%U:%G %a' /etc/camhub/agent-door.yaml)
[ "$perm" = "root:camhub 640" ] || die "/etc/camhub/agent-door.yaml is $perm, not root:camhub 640"
grep -q "credentials: installed door's join token" "$work/install-1.log" || die "run 1 did not install door's join token"
perm=$(pi stat -c '%U:%G %a' /var/lib/camhub-agent/agent-door.join)
[ "$perm" = "camhub:camhub 600" ] || die "door's join token is $perm, not camhub:camhub 600"
perm=$(pi stat -c '%U:%G %a' /var/lib/camhub-agent)
[ "$perm" = "camhub:camhub 700" ] || die "/var/lib/camhub-agent is $perm, not camhub:camhub 700"
if grep -qF "$(tr -d '\n' <"$work/cfg/door.join")" "$work/install-1.log"; then die "door's token is in install.sh's output"; fi
pi journalctl -q -u camhub-agent@door --no-pager | grep 'msg="connected to NATS".*url=tls://' >/dev/null || die "door did not connect over TLS"
st=$(pi cat "/proc/$pid/status")
uid=$(pi id -u camhub)
grep -Eq "^Uid:\s+$uid\s" <<<"$st" || die "the agent does not run as camhub: $(grep ^Uid <<<"$st")"
pi id -nG camhub | grep -qw video || die "camhub is not in group video"
video_gid=$(pi getent group video | cut -d: -f3)
grep -Eq "^Groups:.*\\b$video_gid\\b" <<<"$st" || die "the agent is not in group video ($video_gid): $(grep ^Groups <<<"$st")"
grep -Eq '^NoNewPrivs:\s+1' <<<"$st" || die "NoNewPrivileges is not in force"
grep -Eq '^Seccomp:\s+2' <<<"$st" || die "the system call filter is not in force"
grep -Eq '^CapEff:\s+0+$' <<<"$st" || die "the agent has capabilities: $(grep ^CapEff <<<"$st")"
# The agent's own mounts: / read-only (ProtectSystem=strict), its own /tmp
# (PrivateTmp), /home covered (ProtectHome).
mi=$(pi cat "/proc/$pid/mountinfo")
awk '$5 == "/" { split($6, o, ","); exit !(o[1] == "ro") }' <<<"$mi" || die "ProtectSystem: / is not read-only for the agent"
awk '$5 == "/tmp" { f = 1 } END { exit !f }' <<<"$mi" || die "PrivateTmp: the agent has no /tmp of its own"
awk '$5 == "/home" { f = 1 } END { exit !f }' <<<"$mi" || die "ProtectHome: /home is not covered for the agent"
log "agent runs as camhub (video), no capabilities, NoNewPrivs, seccomp, read-only /, private /tmp, no /home"

# Restart=on-failure: a crash is followed by a new process.
pi kill -SEGV "$pid"
deadline=$(($(now) + 30))
until new=$(pi systemctl show -p MainPID --value camhub-agent@door) && [ "$new" != 0 ] && [ "$new" != "$pid" ] &&
	[ "$(pi systemctl is-active camhub-agent@door)" = active ]; do
	[ "$(now)" -lt "$deadline" ] || die "camhub-agent@door not restarted within 30 s of a crash"
	sleep 0.5
done
log "after SIGSEGV systemd restarted the agent (pid $pid -> $new, NRestarts=$(pi systemctl show -p NRestarts --value camhub-agent@door))"

# The owner edits the settings on the Pi; meanwhile the laptop's copy changes too.
pi sed -i 's/^size: 320x240/size: 160x120/' /etc/camhub/agent-door.yaml
echo 'quality: 70' >>"$work/cfg/agent-door.yaml"

# Run 2: an update to pitest-2. The edit stays and takes effect with the new binary.
install_run 2 "$work/dist2" pi-sim:door || die "install.sh (update) failed"
grep -q 'agent: camhub agent pitest-2 installed' "$work/install-2.log" || die "run 2 did not install pitest-2"
grep -q 'settings edited here, kept' "$work/install-2.log" || die "run 2 did not report the edited settings as kept"
grep -q 'packages: all present' "$work/install-2.log" || die "run 2 installed packages again"
pi grep -qx 'size: 160x120' /etc/camhub/agent-door.yaml || die "the edit on the Pi was overwritten"
pi grep -qx 'quality: 70' /etc/camhub/agent-door.yaml.camhub-new || die "no agent-door.yaml.camhub-new with the laptop's version"
wait_cam door pitest-2 160x120 60
pid=$(pi systemctl show -p MainPID --value camhub-agent@door)

# Run 3: nothing changed, so nothing is touched (no camera named: it updates what is there).
install_run 3 "$work/dist2" pi-sim || die "install.sh (third run) failed"
grep -q 'agent: camhub agent pitest-2, unchanged' "$work/install-3.log" || die "run 3 replaced the binary"
grep -q 'unit: unchanged' "$work/install-3.log" || die "run 3 replaced the unit"
grep -q 'camera door: running; settings edited here, kept' "$work/install-3.log" || die "run 3 did not leave door running with its settings"
[ "$(pi systemctl show -p MainPID --value camhub-agent@door)" = "$pid" ] || die "run 3 restarted the agent"
log "run 3 changed nothing and restarted nothing"

# A camera without settings fails, and says so, without harming the others.
if install_run 4 "$work/dist2" pi-sim:nosettings; then die "install.sh succeeded for a camera without settings"; fi
grep -q 'camera nosettings: ERROR: no /etc/camhub/agent-nosettings.yaml' "$work/install-4.log" || die "run 4 did not explain the failure"
grep -q 'pi-sim: FAILED' "$work/install-4.log" || die "run 4 did not report the host as failed"
[ "$(pi systemctl show -p MainPID --value camhub-agent@door)" = "$pid" ] || die "run 4 restarted door"

# Run 5: --replace-configs: the laptop's version wins, the edited one is kept aside.
install_run 5 "$work/dist2" --replace-configs pi-sim || die "install.sh --replace-configs failed"
grep -q 'camera door: started; settings replaced' "$work/install-5.log" || die "run 5 did not replace door's settings"
pi grep -qx 'size: 160x120' /etc/camhub/agent-door.yaml.camhub-old || die "run 5 kept no agent-door.yaml.camhub-old"
pi test ! -e /etc/camhub/agent-door.yaml.camhub-new || die "run 5 left agent-door.yaml.camhub-new"
wait_cam door pitest-2 320x240 60

# Run 6: settings not edited on the Pi follow the laptop's.
sed -i 's/^size: 320x240/size: 240x180/' "$work/cfg/agent-door.yaml"
install_run 6 "$work/dist2" pi-sim || die "install.sh (run 6) failed"
grep -q 'camera door: started; settings updated' "$work/install-6.log" || die "run 6 did not update door's settings"
wait_cam door pitest-2 240x180 60

# Run 7: a second camera, on a secured hub (users and TLS) as in
# deploy/pi/README.md: its password and the CA go along, never into a log.
sec=$work/sec
mkdir -p "$sec"
(
	cd "$sec"
	umask 077
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=camhub test CA" -keyout ca-key.pem -out ca.pem
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$hub_addr" -keyout hub-key.pem -out hub.csr
	openssl x509 -req -in hub.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
		-extfile <(printf "subjectAltName=IP:%s\nextendedKeyUsage=serverAuth" "$hub_addr") -out hub-cert.pem
	chmod 0644 ca.pem
	head -c 18 /dev/urandom | base64 >gate.pass
	head -c 18 /dev/urandom | base64 >family.pass
	printf '%s\n' 'users:' \
		'  - user: gate' '    role: agent' '    cams: [gate]' '    password_file: gate.pass' \
		'  - user: family' '    role: viewer' '    password_file: family.pass' >users.yaml
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; die "cannot make the test CA"; }
hub2_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats2=nats://$hub_addr:$hub2_port
"$bin/hub" --listen "$hub_addr:$hub2_port" --monitor "" --auth "$sec/users.yaml" \
	--tls-cert "$sec/hub-cert.pem" --tls-key "$sec/hub-key.pem" >"$work/hub2.log" 2>&1 &
pids+=($!)
log "secured hub (users, TLS) on $nats2"
cp "$sec/gate.pass" "$sec/ca.pem" "$work/cfg/"
printf '%s\n' 'source: testpattern' "nats: $nats2" 'user: gate' \
	'password-file: /etc/camhub/gate.pass' 'tls-ca: /etc/camhub/ca.pem' \
	'size: 320x240' 'fps: 5' >"$work/cfg/agent-gate.yaml"
install_run 7 "$work/dist2" pi-sim:gate || die "install.sh (secured camera) failed"
grep -q 'camera gate: started; settings installed' "$work/install-7.log" || die "run 7 did not start gate"
grep -q 'credentials: installed /etc/camhub/gate.pass' "$work/install-7.log" || die "run 7 did not install gate.pass"
grep -q 'credentials: installed /etc/camhub/ca.pem' "$work/install-7.log" || die "run 7 did not install ca.pem"
if grep -qF "$(cat "$sec/gate.pass")" "$work"/install-*.log; then die "the password is in install.sh's output"; fi
for f in "gate.pass:root:camhub 640" "ca.pem:root:camhub 644"; do
	perm=$(pi stat -c '%U:%G %a' "/etc/camhub/${f%%:*}")
	[ "$perm" = "${f#*:}" ] || die "/etc/camhub/${f%%:*} is $perm, not ${f#*:}"
done
vargs=(--nats "$nats2" --user family --password-file "$sec/family.pass" --tls-ca "$sec/ca.pem")
wait_cam gate pitest-2 320x240 60
vargs=(--join-file "$work/viewer.join" --state-dir "$work/viewer-state")
[ "$(pi systemctl is-active camhub-agent@door)" = active ] || die "door is not active after gate was added"
t_install=$(($(now) - t0))

log "PASS: cross-compile ${t_cross}s (release.sh $arches), native ${t_native}s, qemu ${t_qemu}s, Pi image ${t_image}s, install tests ${t_install}s; all $(($(now) - t_start))s"
