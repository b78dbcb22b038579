using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Tests.Fuzz;

/// <summary>A broken expectation about the reader, as opposed to a protocol violation it rightly raised.</summary>
internal sealed class ReaderContractException(string message) : Exception(message);

/// <summary>
/// Feeds bytes to a <see cref="FrameReader"/> the way a connection does (each arrival appended to what is still
/// unconsumed, TryRead until false), decodes every frame it returns, and checks the reader's contract on every
/// call. Returns a signature of what came out, so the same input fed in different shapes can be compared.
/// </summary>
internal static class ReaderHarness
{
    /// <summary>Feeds <paramref name="input"/> in arrivals of the given sizes, each arrival cut into up to <paramref name="maxSegmentsPerArrival"/> segments.</summary>
    public static string Feed(FrameReader reader, byte[] input, IReadOnlyList<int> arrivals, int maxSegmentsPerArrival, Random random)
    {
        var pending = new List<ReadOnlyMemory<byte>>();
        var signature = new StringBuilder();
        var offset = 0;
        foreach (var size in arrivals)
        {
            AddArrival(pending, input.AsMemory(offset, size), maxSegmentsPerArrival, random);
            offset += size;
            if (!Drain(reader, pending, signature))
            {
                return signature.ToString();
            }
        }

        if (offset != input.Length)
        {
            throw new InvalidOperationException("arrivals must add up to the input");
        }

        var left = pending.Sum(piece => (long)piece.Length);
        signature.Append(left == 0 ? "end" : $"pending {left}");
        return signature.ToString();
    }

    /// <summary>The whole input as one arrival.</summary>
    public static int[] Whole(byte[] input) => [input.Length];

    /// <summary>One byte per arrival.</summary>
    public static int[] ByteByByte(byte[] input) => [.. Enumerable.Repeat(1, input.Length)];

    /// <summary>Arrivals of random sizes, small ones more likely.</summary>
    public static List<int> RandomArrivals(byte[] input, Random random)
    {
        var sizes = new List<int>();
        var left = input.Length;
        while (left > 0)
        {
            var size = Math.Min(left, random.Next(3) == 0 ? random.Next(1, 8) : random.Next(1, Math.Max(2, input.Length / 2)));
            sizes.Add(size);
            left -= size;
        }

        return sizes;
    }

    /// <summary>Reads every whole frame out of <paramref name="pending"/>; false once the reader raised a violation (the connection would close).</summary>
    private static bool Drain(FrameReader reader, List<ReadOnlyMemory<byte>> pending, StringBuilder signature)
    {
        var buffer = Sequence(pending);
        var available = buffer.Length;
        var frames = 0;
        while (true)
        {
            var before = buffer;
            bool read;
            RawFrame frame;
            try
            {
                read = reader.TryRead(ref buffer, out frame);
            }
            catch (ProtocolViolationException violation)
            {
                CheckFramingViolation(reader, before, violation);
                signature.Append($"framing {violation.Code}");
                return false;
            }

            if (!read)
            {
                CheckWaiting(reader, before, buffer);
                break;
            }

            var declared = BinaryPrimitives.ReadUInt32BigEndian(Prefix(before));
            var consumed = before.Length - buffer.Length;
            Require(consumed == ProtocolLimits.LengthPrefixSize + declared, $"TryRead consumed {consumed} bytes for a frame declaring {declared}");
            Require(frame.Body.Length == declared - 1, $"frame body is {frame.Body.Length} bytes, the prefix declares {declared - 1}");
            Require(Enum.IsDefined(frame.Type), $"TryRead returned undefined type 0x{(byte)frame.Type:X2}");
            Require(++frames <= (available / (ProtocolLimits.LengthPrefixSize + 1)) + 1, "TryRead returned more frames than the bytes can hold");

            var original = before.Slice(0, consumed).ToArray();
            try
            {
                var reencoded = FuzzCorpus.DecodeAndReencode(reader, frame, out _);
                Require(
                    reencoded.AsSpan().SequenceEqual(original),
                    $"{frame.Type} decoded from {FuzzSeed.Hex(original)} re-encodes to {FuzzSeed.Hex(reencoded)}");
                signature.Append($"{frame.Type}/{declared}/{Hash(original):X8} ");
            }
            catch (ProtocolViolationException violation)
            {
                Require(violation.Code == ErrorCode.MalformedFrame, $"decoding {frame.Type} raised {violation.Code}; only MalformedFrame is possible there");
                signature.Append($"{frame.Type} malformed");
                return false;
            }
        }

        RemoveConsumed(pending, available - buffer.Length);
        return true;
    }

    private static void CheckFramingViolation(FrameReader reader, ReadOnlySequence<byte> buffer, ProtocolViolationException violation)
    {
        Require(Enum.IsDefined(violation.Code), $"violation carries undefined code {(ushort)violation.Code}");
        Require(buffer.Length >= ProtocolLimits.LengthPrefixSize, "a violation was raised before the length prefix was complete");
        var declared = BinaryPrimitives.ReadUInt32BigEndian(Prefix(buffer));
        var expected = declared == 0 ? ErrorCode.MalformedFrame
            : declared > (uint)reader.MaxFrameSize ? ErrorCode.FrameTooLarge
            : ErrorCode.MalformedFrame;
        Require(violation.Code == expected, $"length {declared} raised {violation.Code}, expected {expected}");
        if (violation.Code == ErrorCode.MalformedFrame && declared != 0)
        {
            // The only other framing failure is an unknown type, and it can only be seen once the frame is whole.
            Require(buffer.Length >= ProtocolLimits.LengthPrefixSize + declared, "MalformedFrame raised before the frame was whole");
            var type = buffer.Slice(ProtocolLimits.LengthPrefixSize, 1).FirstSpan[0];
            Require(!Enum.IsDefined((FrameType)type), $"MalformedFrame raised for the defined type 0x{type:X2}");
        }
    }

    /// <summary>When TryRead returns false it consumed nothing, and it is right to wait: no whole frame is there.</summary>
    private static void CheckWaiting(FrameReader reader, ReadOnlySequence<byte> before, ReadOnlySequence<byte> after)
    {
        Require(after.Length == before.Length && after.Start.Equals(before.Start), "TryRead returned false but moved the buffer");
        if (before.Length < ProtocolLimits.LengthPrefixSize)
        {
            return;
        }

        var declared = BinaryPrimitives.ReadUInt32BigEndian(Prefix(before));
        Require(declared != 0 && declared <= (uint)reader.MaxFrameSize, $"TryRead waits on a frame declaring {declared} instead of refusing it");
        Require(before.Length < ProtocolLimits.LengthPrefixSize + declared, $"TryRead waits although all {declared} declared bytes are there ({before.Length} buffered)");
    }

    private static int Hash(byte[] bytes)
    {
        var hash = default(HashCode);
        hash.AddBytes(bytes);
        return hash.ToHashCode();
    }

    private static byte[] Prefix(ReadOnlySequence<byte> buffer) => buffer.Slice(0, ProtocolLimits.LengthPrefixSize).ToArray();

    private static void AddArrival(List<ReadOnlyMemory<byte>> pending, ReadOnlyMemory<byte> arrival, int maxSegments, Random random)
    {
        if (arrival.IsEmpty)
        {
            return;
        }

        var segments = Math.Min(arrival.Length, random.Next(1, maxSegments + 1));
        var cuts = Enumerable.Range(0, segments - 1).Select(_ => random.Next(1, arrival.Length)).Distinct().Order().ToList();
        var start = 0;
        foreach (var cut in cuts.Append(arrival.Length))
        {
            pending.Add(arrival[start..cut]);
            start = cut;
        }
    }

    private static void RemoveConsumed(List<ReadOnlyMemory<byte>> pending, long consumed)
    {
        while (consumed > 0)
        {
            if (pending[0].Length <= consumed)
            {
                consumed -= pending[0].Length;
                pending.RemoveAt(0);
            }
            else
            {
                pending[0] = pending[0][(int)consumed..];
                consumed = 0;
            }
        }
    }

    private static ReadOnlySequence<byte> Sequence(List<ReadOnlyMemory<byte>> pieces)
    {
        var nonEmpty = pieces.Where(piece => !piece.IsEmpty).ToList();
        if (nonEmpty.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        if (nonEmpty.Count == 1)
        {
            return new ReadOnlySequence<byte>(nonEmpty[0]);
        }

        var first = new Segment(nonEmpty[0], 0);
        var last = first;
        foreach (var piece in nonEmpty.Skip(1))
        {
            last = last.Append(piece);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private static void Require(bool condition, string problem)
    {
        if (!condition)
        {
            throw new ReaderContractException(problem);
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
