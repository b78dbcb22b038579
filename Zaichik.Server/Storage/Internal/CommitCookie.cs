using System.Buffers.Binary;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// What the broker records in every commit beside FasterLog's addresses:
/// <c>"ZKC2"[flags u8][first sequence i64][last sequence i64][reserved until i64]</c>. <see cref="Clean"/> is set only
/// by the commit that closes the log, when everything appended is committed: recovery then trusts the commit and
/// checks only its last page. <see cref="ReservedUntil"/> bounds the sequences the log may have handed out (see
/// <see cref="SequenceReservation"/>), so a log that was not closed resumes past every one of them.
/// </summary>
internal readonly record struct CommitCookie(bool Clean, long FirstSequence, long LastSequence, long ReservedUntil)
{
    private const int Size = 4 + 1 + (3 * sizeof(long));
    private const byte CleanFlag = 0x01;

    private static ReadOnlySpan<byte> Magic => "ZKC2"u8;

    public byte[] ToBytes()
    {
        var bytes = new byte[Size];
        Magic.CopyTo(bytes);
        bytes[4] = Clean ? CleanFlag : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(5), FirstSequence);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(13), LastSequence);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(21), ReservedUntil);
        return bytes;
    }

    public static CommitCookie? TryRead(byte[]? bytes)
    {
        if (bytes is not { Length: Size } || !bytes.AsSpan(0, 4).SequenceEqual(Magic))
        {
            return null;
        }

        var cookie = new CommitCookie(
            (bytes[4] & CleanFlag) != 0,
            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(5)),
            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(13)),
            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(21)));
        return cookie.FirstSequence >= 1 && cookie.LastSequence >= cookie.FirstSequence - 1 && cookie.ReservedUntil >= 0 ? cookie : null;
    }
}
