#!/bin/sh
# Run a command in a fresh network namespace whose only interface is loopback (127.0.0.1, ::1), so nothing it starts
# can listen on or talk to any other address, whatever it binds to.
#
#     tools/loopback_only.sh CMD [ARG...]
#     tools/loopback_only.sh .venv/bin/python -m pytest tests/ray_in_netns.py -q
#
# Ray 2.60 started with `ray start --head --node-ip-address=127.0.0.1` still registers its node under the machine's
# external address and its GCS server and raylet listen on all interfaces; inside this namespace it finds no route out,
# uses 127.0.0.1 for its node and binds every port there.
#
# The command also gets its own PID namespace (with its own /proc), so `ray stop --force` inside sees, and stops, only
# the Ray processes started inside, and everything started inside is killed when the command ends or this script is
# killed. Needs `unshare` (util-linux) and `ip` (iproute2) and root, or, as another user, unprivileged user namespaces
# (then the command runs as root of its own user namespace). Exits 125 with the reason when the namespace cannot be made;
# otherwise with the command's exit status.
set -u
die() { echo "loopback_only.sh: $*" >&2; exit 125; }
[ $# -ge 1 ] || die "usage: $0 CMD [ARG...]"
command -v unshare >/dev/null 2>&1 || die "no 'unshare' command (install util-linux); cannot make a private network namespace"
command -v ip >/dev/null 2>&1 || die "no 'ip' command (install iproute2); cannot bring up loopback in a private network namespace"
flags='--net --pid --fork --mount-proc --kill-child'
if [ "$(id -u)" != 0 ]; then flags="--map-root-user $flags"
    who="not root (uid $(id -u)); tried an unprivileged user namespace, which"; hint='run as root, or allow unprivileged user namespaces'
else who='running as root, but'; hint='in a container it needs CAP_SYS_ADMIN, e.g. docker run --cap-add SYS_ADMIN, or --privileged'; fi
# try first, so a failure to make the namespace is told apart from the command's own failure
if ! err=$(unshare $flags -- true 2>&1); then
    die "cannot make a private network namespace: $who failed: $err ($hint)"
fi
exec unshare $flags -- sh -c '
ip link set lo up || { echo "loopback_only.sh: cannot bring up lo in the new network namespace" >&2; exit 125; }
# a fresh namespace has no interface but lo; check that, since the point is that nothing else is reachable
others=$(ip -o link show | awk -F": " "{print \$2}" | grep -v "^lo$")
[ -z "$others" ] || { echo "loopback_only.sh: the new network namespace has interfaces besides lo: $others" >&2; exit 125; }
"$@"' loopback_only.sh "$@"
