#!/usr/bin/env bash
# Five "hosts" on this machine for the harness's ssh backend: network
# namespaces gpx1..gpx5, each with its own address on the bridge gpxbr0
# (10.78.0.11-15/24, the bridge 10.78.0.1) and its own sshd on port 22,
# which lets in root with a key made here.
#
#   bash scripts/ssh-hosts.sh up     # idempotent; prints the nodes file
#   bash scripts/ssh-hosts.sh down   # removes namespaces, bridge, sshds, rule
#   bash scripts/ssh-hosts.sh status
#
# Then:
#   gpaxos-harness test --backend ssh --nodes-file target/ssh-hosts/nodes \
#       --ssh-key target/ssh-hosts/id_ed25519
#
# The namespaces share this machine's file system and process table, but
# the harness treats them as remote hosts all the same: it installs the
# node binary over scp and drives everything over ssh.
#
# Exit codes: 0 done, 1 a step failed, 3 namespaces cannot be made here
# (no root and no sudo, or no `ip netns`).
# Environment: GPX_DIR (default target/ssh-hosts) holds the key, the sshd
# configuration and the nodes file.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${GPX_DIR:-$root/target/ssh-hosts}
BRIDGE=gpxbr0
SUBNET=10.78.0
HOSTS=(1 2 3 4 5)
SSHD=/usr/sbin/sshd

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "ssh-hosts: network namespaces need root (or password-less sudo)" >&2
        exit 3
    fi
fi

say() { echo "ssh-hosts: $*" >&2; }

# Debian's openssh-server, and the tools the harness uses on the hosts.
install_tools() {
    local missing=()
    [ -x "$SSHD" ] || missing+=(openssh-server)
    command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# One key authorizes root on every host; one host key serves every sshd
# (the harness does not check host keys: the hosts are made fresh).
make_keys() {
    mkdir -p "$DIR"
    [ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C gpaxos-harness -f "$DIR/id_ed25519"
    [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C gpx-host -f "$DIR/host_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
    chmod 600 "$DIR/id_ed25519" "$DIR/host_ed25519" "$DIR/authorized_keys"
}

sshd_config() {
    local i=$1
    cat >"$DIR/sshd_gpx$i.conf" <<EOF
ListenAddress $SUBNET.1$i
Port 22
HostKey $DIR/host_ed25519
PidFile $DIR/sshd_gpx$i.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key lives in the working tree, whose modes sshd would refuse.
StrictModes no
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

bridge_up() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        $sudo ip link add "$BRIDGE" type bridge
        $sudo ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    fi
    $sudo ip link set "$BRIDGE" up
    # Docker's FORWARD policy is DROP, and with br_netfilter loaded it
    # applies to traffic between the bridge's ports too.
    if ! $sudo iptables -w -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
        $sudo iptables -w -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    fi
}

host_up() {
    local i=$1 ns=gpx$1 veth=gpxv$1
    if ! ip netns list | grep -qw "$ns"; then
        $sudo ip netns add "$ns"
    fi
    if ! ip link show "$veth" >/dev/null 2>&1; then
        $sudo ip link add "$veth" type veth peer name eth0 netns "$ns"
        $sudo ip link set "$veth" master "$BRIDGE" up
    fi
    $sudo ip netns exec "$ns" ip link set lo up
    $sudo ip netns exec "$ns" ip link set eth0 up
    if ! $sudo ip netns exec "$ns" ip -4 addr show dev eth0 | grep -q "$SUBNET.1$i/"; then
        $sudo ip netns exec "$ns" ip addr add "$SUBNET.1$i/24" dev eth0
    fi
    $sudo ip netns exec "$ns" ip route replace default via "$SUBNET.1"
    sshd_config "$i"
    local pidfile="$DIR/sshd_gpx$i.pid"
    if [ -f "$pidfile" ] && $sudo kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        return 0
    fi
    $sudo mkdir -p /run/sshd
    $sudo ip netns exec "$ns" "$SSHD" -f "$DIR/sshd_gpx$i.conf"
}

wait_ssh() {
    local i deadline=$((SECONDS + 20))
    for i in "${HOSTS[@]}"; do
        until ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o ConnectTimeout=2 -i "$DIR/id_ed25519" "root@$SUBNET.1$i" true 2>/dev/null; do
            if [ "$SECONDS" -gt "$deadline" ]; then
                say "sshd on $SUBNET.1$i does not let us in"
                exit 1
            fi
            sleep 0.2
        done
    done
}

up() {
    if ! ip netns list >/dev/null 2>&1; then
        say "this machine cannot make network namespaces (ip netns)"
        exit 3
    fi
    install_tools
    make_keys
    bridge_up
    for i in "${HOSTS[@]}"; do host_up "$i"; done
    : >"$DIR/nodes.tmp"
    {
        echo "# name host:port -- made by scripts/ssh-hosts.sh; ssh key $DIR/id_ed25519"
        for i in "${HOSTS[@]}"; do echo "n$i $SUBNET.1$i:7000"; done
    } >"$DIR/nodes.tmp"
    mv "$DIR/nodes.tmp" "$DIR/nodes"
    wait_ssh
    say "five hosts up; nodes file $DIR/nodes, key $DIR/id_ed25519"
    echo "$DIR/nodes"
}

down() {
    local i pidfile
    for i in "${HOSTS[@]}"; do
        pidfile="$DIR/sshd_gpx$i.pid"
        if [ -f "$pidfile" ]; then
            $sudo kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
        # Whatever still runs in the namespace (nodes left by a failed
        # run) would keep it alive.
        if ip netns list | grep -qw "gpx$i"; then
            for pid in $($sudo ip netns pids "gpx$i" 2>/dev/null); do
                $sudo kill -9 "$pid" 2>/dev/null || true
            done
            $sudo ip netns del "gpx$i"
        fi
        $sudo ip link del "gpxv$i" 2>/dev/null || true
    done
    $sudo ip link del "$BRIDGE" 2>/dev/null || true
    while $sudo iptables -w -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
    say "hosts down"
}

status() {
    local i
    for i in "${HOSTS[@]}"; do
        if ip netns list | grep -qw "gpx$i"; then echo "gpx$i up"; else echo "gpx$i down"; fi
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
