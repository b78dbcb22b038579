# Sourced by cluster-bench.sh and snapshot-bench.sh (from the repository root): the Release build's broker and CLI, a
# work folder deleted on exit together with every broker started (their PIDs go into pids), and a free loopback port.
server=Zaichik.Server/bin/Release/net10.0/Zaichik.Server.dll
cli=Zaichik.Cli/bin/Release/net10.0/Zaichik.Cli.dll
[ -f "$server" ] && [ -f "$cli" ] || { echo "build Release first: dotnet build Zaichik.sln -c Release" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
