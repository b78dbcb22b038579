using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Zaichik.Analyzers;

namespace Zaichik.Tests.Analyzers;

/// <summary>ZK0001, which every project's build runs: a null array that would become an empty nullable memory.</summary>
public sealed class NullArrayToMemoryAnalyzerTests
{
    [Theory]
    [InlineData("ReadOnlyMemory<byte>? F(bool has, ReadOnlyMemory<byte> key) => has ? key : null;", "null")]
    [InlineData("ReadOnlyMemory<byte>? F(byte[]? key) => key;", "key")]
    [InlineData("ReadOnlyMemory<byte>? F(byte[][]? keys, int i) => keys is null ? null : keys[i];", "keys is null ? null : keys[i]")]
    [InlineData("ReadOnlyMemory<byte>? F(byte[]? key) => key is null ? null : new ReadOnlyMemory<byte>(key);", "null")]
    [InlineData("ReadOnlyMemory<byte>? F(bool has, byte[] key) => has ? new ReadOnlyMemory<byte>(key) : null;", "null")]
    [InlineData("Memory<byte>? F(byte[]? buffer) => buffer;", "buffer")]
    public async Task A_null_array_that_would_become_an_empty_nullable_memory_is_reported(string member, string reported)
    {
        var diagnostics = await AnalyzeAsync(member);

        diagnostics.ShouldHaveSingleItem().Id.ShouldBe(NullArrayToMemoryAnalyzer.Id);
        diagnostics[0].GetMessage().ShouldStartWith($"'{reported}' may be null here");
    }

    [Theory]
    [InlineData("ReadOnlyMemory<byte>? F(bool has, ReadOnlyMemory<byte> key) => has ? key : (ReadOnlyMemory<byte>?)null;")]
    [InlineData("ReadOnlyMemory<byte>? F(byte[]? key) => key is null ? (ReadOnlyMemory<byte>?)null : new ReadOnlyMemory<byte>(key);")]
    [InlineData("ReadOnlyMemory<byte>? F(byte[] key) => key;")]
    [InlineData("ReadOnlyMemory<byte> F(byte[]? headers) => headers;")]
    [InlineData("ReadOnlyMemory<byte>? F() => default(ReadOnlyMemory<byte>);")]
    public async Task What_means_none_or_an_empty_memory_on_purpose_is_not_reported(string member)
    {
        (await AnalyzeAsync(member)).ShouldBeEmpty();
    }

    private static async Task<IReadOnlyList<Diagnostic>> AnalyzeAsync(string member)
    {
        var source = $$"""
            #nullable enable
            using System;
            public static class Sample
            {
                public static {{member}}
            }
            """;
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create(
            "Sample",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest))],
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        compilation.GetDiagnostics().Where(diagnostic => diagnostic.Severity == DiagnosticSeverity.Error).ShouldBeEmpty(source);
        return await compilation.WithAnalyzers([new NullArrayToMemoryAnalyzer()]).GetAnalyzerDiagnosticsAsync();
    }
}
