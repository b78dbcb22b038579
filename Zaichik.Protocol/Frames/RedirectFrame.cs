using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Sent by a cluster node that does not lead the topic a request names (server to client): the client should reconnect
/// to <paramref name="Endpoint"/> and send the request there again. Only cluster nodes send it.
/// </summary>
/// <param name="RequestId">The redirected request's id, or null for a request without one (Subscribe, Commit).</param>
/// <param name="Topic">The topic the request named.</param>
/// <param name="LeaderNode">The id of the node that leads the topic (its <c>Cluster:NodeId</c>).</param>
/// <param name="Endpoint">Where the leader takes clients: <c>host:port</c> of its TCP listener for a TCP connection, its WebSocket URL (<c>ws://host:port/path</c>) for a WebSocket one.</param>
public readonly record struct RedirectFrame(ulong? RequestId, string Topic, string LeaderNode, string Endpoint) : IFrameCodec<RedirectFrame>
{
    static FrameType IFrameCodec<RedirectFrame>.Type => FrameType.Redirect;

    int IFrameCodec<RedirectFrame>.GetFieldsSize() =>
        FieldSize.Byte + (RequestId.HasValue ? FieldSize.Int64 : 0) + FieldSize.String(Topic) + FieldSize.String(LeaderNode) + FieldSize.String(Endpoint);

    void IFrameCodec<RedirectFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteBool(RequestId.HasValue);
        if (RequestId.HasValue)
        {
            writer.WriteUInt64(RequestId.Value);
        }

        writer.WriteString(Topic);
        writer.WriteString(LeaderNode);
        writer.WriteString(Endpoint);
    }

    static RedirectFrame IFrameCodec<RedirectFrame>.ReadFields(ref FieldReader reader)
    {
        ulong? requestId = reader.ReadBool() ? reader.ReadUInt64() : null;
        return new(requestId, reader.ReadString(), reader.ReadString(), reader.ReadString());
    }
}
