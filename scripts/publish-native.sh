#!/usr/bin/env bash
# Compiles the broker to one native executable (NativeAOT): no JIT and no runtime to install, about half the memory
# and CPU per message of `dotnet Zaichik.Server.dll`. Needs clang (apt-get install -y clang) besides the .NET SDK.
#   scripts/publish-native.sh [output folder]     default: artifacts/native
#   artifacts/native/Zaichik.Server --data ./data  (the same options as the JIT'd broker; appsettings.json beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-artifacts/native}"
rid="linux-$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')"

if ! command -v clang >/dev/null 2>&1 && ! compgen -c | grep -E '^clang-[0-9]+$' >/dev/null; then
  echo "publish-native: no clang on PATH; native compilation links with it (apt-get install -y clang)" >&2
  exit 2
fi

dotnet publish Zaichik.Server/Zaichik.Server.csproj -c Release -r "$rid" -p:PublishAot=true -o "$out" -v quiet -nologo
echo "publish-native: $(du -h "$out/Zaichik.Server" | cut -f1) $out/Zaichik.Server ($rid)"
