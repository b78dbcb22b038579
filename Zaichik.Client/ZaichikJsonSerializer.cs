using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Zaichik.Client;

/// <summary>
/// Payloads as UTF-8 JSON through System.Text.Json. For trimmed or AOT apps, pass the <see cref="JsonTypeInfo{T}"/> of a
/// source-generated <c>JsonSerializerContext</c> (<c>new ZaichikJsonSerializer&lt;Order&gt;(MyContext.Default.Order)</c>);
/// without one it uses reflection with <see cref="JsonSerializerOptions.Web"/> (camelCase) or the options given.
/// </summary>
public sealed class ZaichikJsonSerializer<T> : IZaichikSerializer<T>
{
    private readonly JsonTypeInfo<T> _typeInfo;

    /// <summary>Uses source-generated metadata: no reflection.</summary>
    public ZaichikJsonSerializer(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        _typeInfo = typeInfo;
    }

    /// <summary>Uses reflection-based metadata with <paramref name="options"/> (default <see cref="JsonSerializerOptions.Web"/>).</summary>
    [RequiresUnreferencedCode("Reflection-based JSON; pass a source-generated JsonTypeInfo<T> for trimmed apps.")]
    [RequiresDynamicCode("Reflection-based JSON; pass a source-generated JsonTypeInfo<T> for AOT apps.")]
    public ZaichikJsonSerializer(JsonSerializerOptions? options = null)
    {
        options ??= JsonSerializerOptions.Web;
        options.MakeReadOnly(populateMissingResolver: true);
        _typeInfo = (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
    }

    /// <summary>The serializer <see cref="ZaichikClient"/> uses when none is given.</summary>
    public static ZaichikJsonSerializer<T> Default => DefaultHolder.Instance;

    /// <inheritdoc />
    public void Serialize(T value, IBufferWriter<byte> output)
    {
        using var writer = new Utf8JsonWriter(output);
        JsonSerializer.Serialize(writer, value, _typeInfo);
    }

    /// <inheritdoc />
    public T Deserialize(ReadOnlyMemory<byte> payload) => JsonSerializer.Deserialize(payload.Span, _typeInfo)!;

    private static class DefaultHolder
    {
#pragma warning disable IL2026, IL3050 // The default is the reflection-based serializer; trimmed apps pass their own.
        public static readonly ZaichikJsonSerializer<T> Instance = new();
#pragma warning restore IL2026, IL3050
    }
}
