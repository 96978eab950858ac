# shellcheck shell=bash
# Shell helpers shared by e2e/controlplane.sh and e2e/cluster.sh (sourced by both).

# free_ports <n>: n distinct free TCP ports on 127.0.0.1, one per line (all bound at once, so
# they differ, then released for the caller's servers to take).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}
