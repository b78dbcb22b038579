using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Deletes <paramref name="key"/> from a topic that keeps the latest value per key
    /// (<see cref="TopicOptions.KeepLatestPerKey"/>): publishes a tombstone, an empty message with that key and the header
    /// <see cref="Tombstone.HeaderKey"/>. Readers skip every older value of the key at once; the tombstone itself is
    /// delivered for the topic's <see cref="TopicOptions.TombstoneRetention"/>, then it and the key are gone. On other
    /// topics it is an ordinary message.
    /// </summary>
    /// <exception cref="ZaichikServerException">The server refused the message.</exception>
    public ValueTask<PublishResult> PublishTombstoneAsync(string topic, ReadOnlyMemory<byte> key, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, ReadOnlyMemory<byte>.Empty, key, new ZaichikHeaders().Add(Tombstone.HeaderKey, ""), cancellationToken);

    /// <summary>Deletes a UTF-8 text key. See <see cref="PublishTombstoneAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public ValueTask<PublishResult> PublishTombstoneAsync(string topic, string key, CancellationToken cancellationToken = default) =>
        PublishTombstoneAsync(topic, Encoding.UTF8.GetBytes(key), cancellationToken);
}
