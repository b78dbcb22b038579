#!/usr/bin/env bash
# Proves the NuGet packages work outside this repository: packs Zaichik.Protocol and Zaichik.Client, creates a
# fresh console app in a temporary folder (so none of this repo's Directory.*.props apply), installs
# Zaichik.Client from the packed folder, and runs an echo against a running server.
#
# Usage: scripts/pack-smoke.sh [HOST] [PORT]     (default 127.0.0.1 8889; start the server first:
#        dotnet run --project Zaichik.Server)
# Exits with the app's exit code: 0 when the echo came back.
set -euo pipefail

host="${1:-127.0.0.1}"
port="${2:-8889}"
repo="$(cd "$(dirname "$0")/.." && pwd)"

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

packages="$(mktemp -d)"
app="$(mktemp -d)"
# A private package cache, so an older 0.1.0 cached from an earlier run is never used instead of what was just packed.
cache="$(mktemp -d)"
trap 'rm -rf "$packages" "$app" "$cache"' EXIT

echo "== Packing into $packages"
dotnet pack "$repo/Zaichik.Protocol" -c Release -o "$packages"
dotnet pack "$repo/Zaichik.Client" -c Release -o "$packages"
ls -1 "$packages"

echo "== Creating a console app in $app"
cd "$app"
dotnet new console --name PackSmoke --output . --framework net10.0
# The packed folder is added beside the machine's default sources (no <clear/>), which serve everything else.
cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="zaichik-local" value="$packages" />
  </packageSources>
  <config>
    <add key="globalPackagesFolder" value="$cache" />
  </config>
</configuration>
XML
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -1)"
dotnet add package Zaichik.Client --version "$version"

cat > Program.cs <<'CS'
using Zaichik.Client;
using Zaichik.Protocol;

var host = args.Length > 0 ? args[0] : "127.0.0.1";
var port = args.Length > 1 ? int.Parse(args[1]) : 8889;
var topic = $"pack-smoke-{Guid.NewGuid():N}"[..23];

ZaichikClient client;
try
{
    client = await ZaichikClient.ConnectAsync(host, port);
}
catch (ZaichikConnectionException e)
{
    Console.Error.WriteLine($"Zaichik server is not reachable at {host}:{port}; start it with: dotnet run --project Zaichik.Server ({e.Message})");
    return 1;
}

await using (client)
{
    await client.CreateTopicAsync(topic);
    await using var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { From = StartPosition.Latest });
    var published = await client.PublishAsync(topic, "Hello from the packed Zaichik.Client!");
    Console.WriteLine($"published to {topic} at sequence {published.Sequence}");

    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
    await foreach (var message in subscription.WithCancellation(timeout.Token))
    {
        Console.WriteLine($"received \"{message.PayloadText}\" at sequence {message.Sequence}");
        await client.CommitAsync(message);
        return 0;
    }
}

Console.Error.WriteLine("the published message did not come back within 10 s");
return 1;
CS

echo "== Building"
dotnet build -c Release
echo "== Running against $host:$port"
set +e
dotnet run -c Release --no-build -- "$host" "$port"
status=$?
set -e
echo "== pack smoke exit code: $status"
exit "$status"
