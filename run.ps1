#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Thin wrappers over the dotnet commands the README shows.
.EXAMPLE
    ./run.ps1 server                 # dotnet run --project Zaichik.Server
    ./run.ps1 server --port 9000     # extra arguments go to the server
    ./run.ps1 example echo           # echo | retention | compaction
    ./run.ps1 test                   # dotnet test
    ./run.ps1 bench --quick          # dotnet run -c Release --project Zaichik.Benchmarks -- --quick
#>
param(
    [Parameter(Position = 0)]
    [ValidateSet('server', 'example', 'test', 'bench')]
    [string] $Command = 'server',

    [Parameter(Position = 1, ValueFromRemainingArguments = $true)]
    [string[]] $Arguments = @()
)

$ErrorActionPreference = 'Stop'
Set-Location -Path $PSScriptRoot

switch ($Command) {
    'server' {
        dotnet run --project Zaichik.Server -- @Arguments
    }
    'example' {
        $examples = @{ echo = 'Echo'; retention = 'Retention'; compaction = 'Compaction' }
        $name = if ($Arguments.Count -gt 0) { $Arguments[0].ToLowerInvariant() } else { '' }
        if (-not $examples.ContainsKey($name)) {
            Write-Error "usage: ./run.ps1 example echo|retention|compaction"
            exit 2
        }
        dotnet run --project "Zaichik.Examples/$($examples[$name])"
    }
    'test' {
        dotnet test @Arguments
    }
    'bench' {
        dotnet run -c Release --project Zaichik.Benchmarks -- @Arguments
    }
}

exit $LASTEXITCODE
