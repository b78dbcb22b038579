#!/usr/bin/env bash
# Proves the NuGet packages work outside this repository. Packs Zaichik.Client, Zaichik.Client.Extensions.Hosting and
# Zaichik.Cli (the README's pack commands), checks what the client package holds, then in temporary folders (so none
# of this repo's Directory.*.props apply) installs exactly the packages the README tells users to install:
#   - into a fresh console app: Zaichik.Client, and runs an echo;
#   - into a fresh worker app: Zaichik.Client.Extensions.Hosting, and runs AddZaichikClient + a ZaichikConsumer<T>
#     round trip and the health check;
#   - as a .NET tool into a temporary --tool-path: Zaichik.Cli, and runs zaichik --version, pub and sub.
# Zaichik packages come only from the packed folder (package source mapping), into an empty package cache, so a
# stale or foreign 0.1.0 is never used; everything else comes from the machine's usual sources. One restore per app.
#
# Usage: scripts/pack-smoke.sh [HOST] [PORT]     (default 127.0.0.1 8889; start the server first:
#        dotnet run --project Zaichik.Server)
# Exits 0 when both apps' round trips and the tool's came back.
set -euo pipefail

host="${1:-127.0.0.1}"
port="${2:-8889}"
repo="$(cd "$(dirname "$0")/.." && pwd)"

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
packages="$work/packages"
export NUGET_PACKAGES="$work/nuget-cache"
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -1)"

fail() { echo "pack smoke: $*" >&2; exit 1; }

# The install commands must be the ones the README gives.
for line in "dotnet pack Zaichik.Client -c Release -o packages" \
            "dotnet pack Zaichik.Client.Extensions.Hosting -c Release -o packages" \
            "dotnet add package Zaichik.Client" \
            "dotnet add package Zaichik.Client.Extensions.Hosting" \
            "dotnet pack Zaichik.Cli -c Release -o packages" \
            "dotnet tool install --global --add-source packages Zaichik.Cli"; do
  grep -qxF "$line" "$repo/README.md" || fail "README.md no longer says: $line"
done

echo "== Packing into $packages"
(cd "$repo" && dotnet pack Zaichik.Client -c Release -o "$packages" && dotnet pack Zaichik.Client.Extensions.Hosting -c Release -o "$packages" \
  && dotnet pack Zaichik.Cli -c Release -o "$packages")
ls -1 "$packages"

echo "== Checking the Zaichik.Client package"
client_nupkg="$packages/Zaichik.Client.$version.nupkg"
unzip -l "$client_nupkg"
for file in lib/net10.0/Zaichik.Client.dll lib/net10.0/Zaichik.Client.xml lib/net10.0/Zaichik.Protocol.dll lib/net10.0/Zaichik.Protocol.xml; do
  unzip -l "$client_nupkg" "$file" > /dev/null || fail "Zaichik.Client.$version.nupkg lacks $file"
done
unzip -p "$client_nupkg" Zaichik.Client.nuspec | sed -n '/<dependencies>/,/<\/dependencies>/p'
if unzip -p "$client_nupkg" Zaichik.Client.nuspec | grep 'id="Zaichik.Protocol"' > /dev/null; then
  fail "Zaichik.Client.nuspec depends on a Zaichik.Protocol package; it must carry the dll instead"
fi
unzip -p "$packages/Zaichik.Client.Extensions.Hosting.$version.nupkg" Zaichik.Client.Extensions.Hosting.nuspec | grep "id=\"Zaichik.Client\" version=\"$version\"" > /dev/null \
  || fail "Zaichik.Client.Extensions.Hosting.nuspec does not depend on Zaichik.Client $version"

# Zaichik.* only from the packed folder; every other package from the machine's enabled sources, by their names
# (read here, outside the apps' folders, before any of their nuget.config files exists).
sources="$(cd "$work" && dotnet nuget list source | sed -nE 's/^ *[0-9]+\. +(.+) \[Enabled\]$/\1/p')"
nuget_config() {
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo '<configuration>'
  echo "  <packageSources><add key=\"zaichik-local\" value=\"$packages\" /></packageSources>"
  echo '  <packageSourceMapping>'
  echo '    <packageSource key="zaichik-local"><package pattern="Zaichik.*" /></packageSource>'
  while IFS= read -r name; do
    [ -n "$name" ] && echo "    <packageSource key=\"$name\"><package pattern=\"*\" /></packageSource>"
  done <<< "$sources"
  echo '  </packageSourceMapping>'
  echo '</configuration>'
}

# Fails unless every restored Zaichik package came from the packed folder.
check_sources() {
  local metadata
  for metadata in "$NUGET_PACKAGES"/zaichik.*/"$version"/.nupkg.metadata; do
    [ -f "$metadata" ] || fail "no Zaichik package was restored"
    grep -qF "\"source\": \"$packages\"" "$metadata" || fail "$metadata did not come from $packages"
  done
}

echo "== Console app: dotnet add package Zaichik.Client"
mkdir "$work/console" && cd "$work/console"
dotnet new console --name PackSmoke --output . --framework net10.0 --no-restore
nuget_config > nuget.config
dotnet add package Zaichik.Client --version "$version" --no-restore

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

dotnet build -c Release
check_sources
echo "== Running the console app against $host:$port"
set +e
dotnet run -c Release --no-build -- "$host" "$port"
console_status=$?
set -e
echo "== console app exit code: $console_status"

echo "== Worker app: dotnet add package Zaichik.Client.Extensions.Hosting"
mkdir "$work/worker" && cd "$work/worker"
dotnet new worker --name PackSmokeWorker --output . --framework net10.0 --no-restore
rm Worker.cs
nuget_config > nuget.config
dotnet add package Zaichik.Client.Extensions.Hosting --version "$version" --no-restore

cat > Program.cs <<'CS'
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting;

var topic = $"pack-worker-{Guid.NewGuid():N}"[..24];
var builder = Host.CreateApplicationBuilder(args);   // --Zaichik:Host and --Zaichik:Port come from the command line
builder.Services.AddZaichikClient(builder.Configuration.GetSection("Zaichik"));
builder.Services.AddHealthChecks().AddZaichikHealthCheck();
var received = new TaskCompletionSource<Greeting>(TaskCreationOptions.RunContinuationsAsynchronously);
builder.Services.AddSingleton(new Inbox(topic, received));
builder.Services.AddHostedService<GreetingConsumer>();
using var app = builder.Build();

var client = app.Services.GetRequiredService<ZaichikClient>();
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
try
{
    // Retained, so the greeting reaches the consumer even if it is published before its subscription is acknowledged.
    await client.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(10) }, timeout.Token);
}
catch (Exception e) when (e is ZaichikException or OperationCanceledException)
{
    Console.Error.WriteLine($"Zaichik server is not reachable: {e.Message}");
    return 1;
}

await app.StartAsync();
try
{
    var published = await client.PublishAsync(topic, new Greeting("Hello from the packed Zaichik.Client.Extensions.Hosting!"));
    Console.WriteLine($"published to {topic} at sequence {published.Sequence}");
    var greeting = await received.Task.WaitAsync(timeout.Token);
    Console.WriteLine($"consumer processed \"{greeting.Text}\"");
    var health = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
    Console.WriteLine($"health: {health.Status} ({health.Entries["zaichik"].Description})");
    return health.Status == HealthStatus.Healthy ? 0 : 1;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("the consumer did not process the greeting within 10 s");
    return 1;
}
finally
{
    await app.StopAsync();
}

public sealed record Greeting(string Text);

public sealed record Inbox(string Topic, TaskCompletionSource<Greeting> Received);

public sealed class GreetingConsumer(ZaichikClient client, Inbox inbox, ILogger<GreetingConsumer> logger)
    : ZaichikConsumer<Greeting>(client, logger)
{
    protected override string Topic => inbox.Topic;

    protected override Task ProcessAsync(ZaichikMessage<Greeting> message, CancellationToken cancellationToken)
    {
        inbox.Received.TrySetResult(message.Value);
        return Task.CompletedTask;
    }
}
CS

dotnet build -c Release
check_sources
echo "== Running the worker app against $host:$port"
set +e
dotnet run -c Release --no-build -- --Zaichik:Host "$host" --Zaichik:Port "$port"
worker_status=$?
set -e
echo "== worker app exit code: $worker_status"

echo "== Tool: dotnet tool install Zaichik.Cli (into a temporary --tool-path, from the packed folder only)"
unzip -l "$packages/Zaichik.Cli.$version.nupkg" | grep "tools/net10.0/any/Zaichik.Cli.dll" > /dev/null || fail "Zaichik.Cli.$version.nupkg is not a .NET tool"
mkdir "$work/tool" && cd "$work/tool"
nuget_config > nuget.config
dotnet tool install Zaichik.Cli --version "$version" --tool-path "$work/tool/bin" --configfile nuget.config
# A tool's store keeps no source in its .nupkg.metadata: compare the installed dll with the packed one instead.
installed_dll="$work/tool/bin/.store/zaichik.cli/$version/zaichik.cli/$version/tools/net10.0/any/Zaichik.Cli.dll"
[ "$(unzip -p "$packages/Zaichik.Cli.$version.nupkg" tools/net10.0/any/Zaichik.Cli.dll | sha256sum)" = "$(sha256sum < "$installed_dll")" ] \
  || fail "the installed zaichik is not the one packed into $packages"
zaichik="$work/tool/bin/zaichik"
tool_topic="pack-cli-$(date +%s)-$$"
tool_text="Hello from the packed Zaichik.Cli!"
echo "== Running the tool against $host:$port"
set +e
tool_status=0
tool_version="$("$zaichik" --version)" || tool_status=1
echo "zaichik --version: $tool_version"
[ "$tool_version" = "$version" ] || { echo "pack smoke: zaichik --version printed '$tool_version', not $version" >&2; tool_status=1; }
# Retained, so sub --from retained gets the message published before it subscribed.
"$zaichik" create "$tool_topic" --retention 10m --server "$host:$port" || tool_status=1
"$zaichik" pub "$tool_topic" "$tool_text" --server "$host:$port" || tool_status=1
tool_received="$(timeout 30 "$zaichik" sub "$tool_topic" --count 1 --from retained --server "$host:$port")" || tool_status=1
echo "zaichik sub: $tool_received"
[[ "$tool_received" == *"$tool_text"* ]] || { echo "pack smoke: zaichik sub did not print the published message" >&2; tool_status=1; }
set -e
echo "== tool exit code: $tool_status"

echo "== pack smoke: console $console_status, worker $worker_status, tool $tool_status"
[ "$console_status" -eq 0 ] && [ "$worker_status" -eq 0 ] && [ "$tool_status" -eq 0 ]
