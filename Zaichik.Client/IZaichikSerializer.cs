using System.Buffers;

namespace Zaichik.Client;

/// <summary>
/// Turns values of <typeparamref name="T"/> into message payloads and back, for
/// <see cref="ZaichikClient.PublishAsync{T}(string, T, string?, ZaichikHeaders?, IZaichikSerializer{T}?, CancellationToken)"/> and
/// <see cref="ZaichikClient.SubscribeAsync{T}(string, SubscribeOptions?, IZaichikSerializer{T}?, CancellationToken)"/>.
/// Implementations must be thread-safe. <see cref="ZaichikJsonSerializer{T}"/> is the default.
/// </summary>
public interface IZaichikSerializer<T>
{
    /// <summary>Writes <paramref name="value"/> as a payload.</summary>
    void Serialize(T value, IBufferWriter<byte> output);

    /// <summary>Reads a payload back; throws when it is not a <typeparamref name="T"/>.</summary>
    T Deserialize(ReadOnlyMemory<byte> payload);
}
