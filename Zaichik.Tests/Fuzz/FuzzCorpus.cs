using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Tests.Fuzz;

/// <summary>One valid frame, as FrameWriter encodes it, that the fuzzers start from.</summary>
/// <param name="Name">What it is, for failure messages.</param>
/// <param name="Bytes">The whole frame, length prefix included.</param>
internal sealed record SeedFrame(string Name, byte[] Bytes)
{
    public FrameType Type => (FrameType)Bytes[ProtocolLimits.LengthPrefixSize];

    /// <summary>True for frames a client sends (the server's fuzzer sends mostly these).</summary>
    public bool FromClient => Type is not (FrameType.Message or FrameType.Ack or FrameType.Error or FrameType.Redirect);
}

/// <summary>
/// Everything the fuzzers know about frame types, in one place: a seed list with every type, and a decoder that
/// re-encodes what it decoded. A new frame type (Ping, Pong, Nack, ...) needs a seed here and a line in
/// <see cref="DecodeAndReencode"/>; <c>CodecFuzzTests.Every_frame_type_has_a_seed_and_a_codec_entry</c> fails until
/// both are there.
/// </summary>
internal static class FuzzCorpus
{
    /// <summary>A current-version Hello without a token, as the load and fuzz tests open connections with.</summary>
    public static readonly byte[] HelloBytes = Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current)));

    /// <summary>The Close frame.</summary>
    public static readonly byte[] CloseBytes = Encode(w => FrameWriter.Write(w, default(CloseFrame)));

    /// <summary>Topics the seeds name; the server fuzzer creates them up front.</summary>
    public static readonly string[] Topics = ["fuzz-a", "fuzz-b"];

    public static IReadOnlyList<SeedFrame> Seeds { get; } = BuildSeeds();

    /// <summary>Seeds small enough to send many of per connection.</summary>
    public static IReadOnlyList<SeedFrame> SmallSeeds { get; } = [.. Seeds.Where(seed => seed.Bytes.Length <= 2048)];

    public static IReadOnlyList<SeedFrame> ClientSeeds { get; } = [.. SmallSeeds.Where(seed => seed.FromClient)];

    /// <summary>
    /// Decodes <paramref name="frame"/> with the FrameReader method for its type and encodes the result again with
    /// FrameWriter. A decoded frame must re-encode to exactly the bytes it came from: the wire format has one
    /// encoding per value, so anything else means the decoder accepted bytes it should have refused or lost some.
    /// </summary>
    /// <exception cref="ProtocolViolationException">The body does not decode.</exception>
    public static byte[] DecodeAndReencode(FrameReader reader, in RawFrame frame, out ulong? requestId)
    {
        var output = new ArrayBufferWriter<byte>();
        requestId = null;
        switch (frame.Type)
        {
            case FrameType.Hello:
                var hello = reader.ReadHello(frame);
                if (!ProtocolVersion.IsSupported(hello.Version))
                {
                    // Only the version is read from a Hello of another version; the rest is that version's business.
                    var header = new byte[ProtocolLimits.LengthPrefixSize + 1];
                    BinaryPrimitives.WriteUInt32BigEndian(header, (uint)(frame.Body.Length + 1));
                    header[ProtocolLimits.LengthPrefixSize] = (byte)FrameType.Hello;
                    output.Write(header);
                    output.Write(frame.Body.Span);
                }
                else
                {
                    FrameWriter.Write(output, hello);
                }

                break;
            case FrameType.Ping:
                FrameWriter.Write(output, reader.ReadPing(frame));
                break;
            case FrameType.Pong:
                FrameWriter.Write(output, reader.ReadPong(frame));
                break;
            case FrameType.CreateTopic:
                var create = reader.ReadCreateTopic(frame);
                requestId = create.RequestId;
                FrameWriter.Write(output, create);
                break;
            case FrameType.Publish:
                var publish = reader.ReadPublish(frame);
                requestId = publish.RequestId;
                FrameWriter.Write(output, publish);
                break;
            case FrameType.Subscribe:
                var subscribe = reader.ReadSubscribe(frame);
                requestId = subscribe.RequestId;
                FrameWriter.Write(output, subscribe);
                break;
            case FrameType.Unsubscribe:
                var unsubscribe = reader.ReadUnsubscribe(frame);
                requestId = unsubscribe.RequestId;
                FrameWriter.Write(output, unsubscribe);
                break;
            case FrameType.Commit:
                FrameWriter.Write(output, reader.ReadCommit(frame));
                break;
            case FrameType.Nack:
                FrameWriter.Write(output, reader.ReadNack(frame));
                break;
            case FrameType.Close:
                FrameWriter.Write(output, reader.ReadClose(frame));
                break;
            case FrameType.Message:
                FrameWriter.Write(output, reader.ReadMessage(frame));
                break;
            case FrameType.Ack:
                FrameWriter.Write(output, reader.ReadAck(frame));
                break;
            case FrameType.Error:
                FrameWriter.Write(output, reader.ReadError(frame));
                break;
            case FrameType.Redirect:
                FrameWriter.Write(output, reader.ReadRedirect(frame));
                break;
            default:
                throw new InvalidOperationException($"FuzzCorpus has no codec entry for {frame.Type}; add one to {nameof(DecodeAndReencode)}");
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>Bytes of a frame for tests that build streams.</summary>
    public static byte[] Encode(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>A random byte string: most short, some up to 1 KiB, half of them shaped like a frame header.</summary>
    public static byte[] RandomBytes(Random random)
    {
        var length = random.Next(10) == 0 ? random.Next(1025) : random.Next(65);
        var bytes = new byte[length];
        random.NextBytes(bytes);
        if (length >= 5 && random.Next(2) == 0)
        {
            // A plausible header, so random bodies reach the field decoders instead of failing on the length.
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)(length - ProtocolLimits.LengthPrefixSize));
            bytes[ProtocolLimits.LengthPrefixSize] = (byte)AnyType(random);
        }

        return bytes;
    }

    /// <summary>
    /// A copy of <paramref name="seed"/> with one to three mutations applied; <paramref name="description"/> says
    /// which, for the failure message.
    /// </summary>
    public static byte[] Mutate(byte[] seed, Random random, out string description)
    {
        var bytes = seed;
        var applied = new List<string>();
        var count = 1 + (random.Next(4) == 0 ? random.Next(1, 3) : 0);
        for (var i = 0; i < count; i++)
        {
            bytes = MutateOnce(bytes, random, out var what);
            applied.Add(what);
        }

        description = string.Join(" + ", applied);
        return bytes;
    }

    /// <summary>
    /// A copy of <paramref name="seed"/> with one field set to an edge value and encoded again, so the frame stays
    /// well formed and reaches the server's handlers with values that byte mutations rarely leave intact. Frame types
    /// without an entry here come back unchanged.
    /// </summary>
    public static byte[] MutateField(SeedFrame seed, Random random, out string description)
    {
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>(seed.Bytes);
        reader.TryRead(ref buffer, out var frame);
        var fields = Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(5)).ToList();
        switch (frame.Type)
        {
            case FrameType.Hello:
                var version = Pick(random, [(ushort)0, (ushort)1, (ushort)2, (ushort)3, (ushort)4, (ushort)5, (ushort)6, ProtocolVersion.Minimum, ProtocolVersion.Current, (ushort)(ProtocolVersion.Current + 1), ushort.MaxValue]);
                var producerId = Pick(random, [0UL, 1UL, ulong.MaxValue]);
                description = $"Hello version {version}, producer {producerId}";
                return Encode(w => FrameWriter.Write(w, new HelloFrame(version, ProducerId: producerId)));

            case FrameType.CreateTopic:
                // Half of them name a new topic: settings only take effect when they create one.
                var create = reader.ReadCreateTopic(frame);
                create = random.Next(2) == 0 ? create with { Topic = FreshTopic(random) } : create;
                foreach (var field in fields.Select(field => random.Next(3) == 0 ? field + 5 : field))
                {
                    create = field switch
                    {
                        0 => create with { Topic = EdgeTopic(random) },
                        1 => create with { RetentionTtlMs = EdgeLong(random) },
                        2 => create with { CompactionWindowMs = EdgeLong(random) },
                        3 => create with { Durability = Pick(random, Enum.GetValues<Durability>()) },
                        4 => create with { Durability = Durability.Interval, CommitIntervalMs = EdgeLong(random) },

                        // A tombstone retention without keepLatestPerKey, or a negative one, is refused (InvalidArgument).
                        5 or 6 => create with { KeepLatestPerKey = !create.KeepLatestPerKey },
                        _ => create with { TombstoneRetentionMs = EdgeLong(random) },
                    };
                }

                description = $"{create}";
                return Encode(w => FrameWriter.Write(w, create));

            case FrameType.Publish:
                var publish = reader.ReadPublish(frame);
                foreach (var field in fields.Select(field => random.Next(3) == 0 ? field + 5 : field))
                {
                    publish = field switch
                    {
                        0 or 1 => publish with { Topic = EdgeTopic(random) },
                        2 => publish with { Key = new byte[Pick(random, [0, 1, 1024, 1025, 4096])] },
                        3 => publish with { Key = null },

                        // Without a producer id in the Hello, a producer sequence above 0 is refused (InvalidArgument).
                        5 or 6 => publish with { ProducerSequence = Pick(random, [0UL, 1UL, 2UL, ulong.MaxValue]) },

                        // 16 KiB is the header limit, 16 KiB + 1 over it; 20,000 bytes of headers split over log pages.
                        7 or 8 or 9 => publish with { Headers = HeadersOf(random.Next(64) == 0 ? Pick(random, [16 * 1024, (16 * 1024) + 1, 20_000]) : Pick(random, [0, 8, 100])) },

                        // 70,000 bytes is split over several log pages; 1 MiB + 1 is over the payload limit.
                        _ => publish with { Payload = new byte[random.Next(8) == 0 ? Pick(random, [70_000, (1024 * 1024) + 1]) : random.Next(64)] },
                    };
                }

                description = $"Publish to '{publish.Topic}', key {publish.Key?.Length.ToString() ?? "none"}, payload {publish.Payload.Length}, "
                    + $"producer sequence {publish.ProducerSequence}, headers {publish.Headers.Length}";
                return Encode(w => FrameWriter.Write(w, publish));

            case FrameType.Subscribe:
                var subscribe = reader.ReadSubscribe(frame);
                foreach (var field in fields.Select(field => random.Next(3) == 0 ? field + 5 : field))
                {
                    subscribe = field switch
                    {
                        0 => subscribe with { Topic = EdgeTopic(random) },
                        1 => subscribe with { From = EdgeStart(random) },
                        2 or 3 => subscribe with { Prefetch = Pick(random, [0u, 1u, 2u, 512u, 513u, 10_000u, 10_001u, (uint)int.MaxValue, uint.MaxValue]) },
                        4 => subscribe with { DurableName = Pick<string?>(random, [null, string.Empty, "billing", "audit", new string('d', 64), new string('d', 65), "bad name", "ü", "../x"]) },

                        // A group with a durable name, and the group fields without a group, are for the server to refuse or ignore.
                        5 => subscribe with { Group = Pick<string?>(random, [null, string.Empty, "workers", "billing", new string('g', 64), new string('g', 65), "bad name", "ü"]) },
                        6 => subscribe with { AckWaitMs = Pick(random, [0u, 1u, 30_000u, (uint)int.MaxValue, uint.MaxValue]) },
                        7 => subscribe with { MaxDeliver = Pick(random, [0u, 1u, 2u, uint.MaxValue]) },
                        8 => subscribe with { DeadLetterTopic = random.Next(3) == 0 ? null : EdgeTopic(random) },
                        _ => subscribe with { AckPolicy = Pick(random, Enum.GetValues<AckPolicy>()) },
                    };
                }

                description = $"{subscribe}";
                return Encode(w => FrameWriter.Write(w, subscribe));

            case FrameType.Unsubscribe:
                var unsubscribe = reader.ReadUnsubscribe(frame) with { Topic = EdgeTopic(random) };
                description = $"{unsubscribe}";
                return Encode(w => FrameWriter.Write(w, unsubscribe));

            case FrameType.Commit:
                var commit = random.Next(2) == 0 ? new CommitFrame(EdgeTopic(random), 0) : new CommitFrame(Topics[random.Next(Topics.Length)], EdgeSequence(random));
                commit = commit with { Single = random.Next(3) == 0 };
                description = $"{commit}";
                return Encode(w => FrameWriter.Write(w, commit));

            case FrameType.Nack:
                var nack = new NackFrame(
                    random.Next(2) == 0 ? EdgeTopic(random) : Topics[random.Next(Topics.Length)],
                    EdgeSequence(random),
                    Pick(random, [0u, 1u, 5_000u, (uint)int.MaxValue, uint.MaxValue]));
                description = $"{nack}";
                return Encode(w => FrameWriter.Write(w, nack));

            default:
                description = $"{frame.Type} unchanged (no field mutator)";
                return seed.Bytes;
        }
    }

    /// <summary>A well-formed header block of exactly <paramref name="size"/> bytes (0, or at least 8): one bytes header.</summary>
    internal static byte[] HeadersOf(int size)
    {
        if (size == 0)
        {
            return [];
        }

        var block = new ArrayBufferWriter<byte>();
        HeaderBlock.WriteEntry(block, "h", isText: false, new byte[size - HeaderBlock.EntrySize(1, 0)]);
        return block.WrittenSpan.ToArray();
    }

    private static long EdgeLong(Random random) => Pick(random,
    [
        0, 1, -1, long.MinValue, long.MaxValue, int.MaxValue, uint.MaxValue - 1, uint.MaxValue, 1L << 53,
        (long)TimeSpan.MaxValue.TotalMilliseconds, (long)TimeSpan.MaxValue.TotalMilliseconds + 1, random.NextInt64(long.MinValue, long.MaxValue),
    ]);

    /// <summary>Sequences at the edges of what the u64 field carries and a long holds (a negative one has no encoding).</summary>
    private static long EdgeSequence(Random random) => Pick(random,
    [
        0, 1, 2, 63, 64, int.MaxValue, uint.MaxValue, 1L << 53, long.MaxValue - 1, long.MaxValue, random.NextInt64(long.MaxValue),
    ]);

    /// <summary>
    /// Every kind of start, mostly as a client builds it and sometimes with a position the server must refuse or ignore
    /// (a Sequence below 1, a negative Time, a Retained or Latest with a position), which only the codec lets through.
    /// </summary>
    private static StartPosition EdgeStart(Random random) => random.Next(6) switch
    {
        0 => StartPosition.Retained,
        1 => StartPosition.Latest,
        2 => StartPosition.Sequence(Math.Max(1, EdgeSequence(random))),
        3 => StartPosition.Time(Pick(random, [0, 1_700_000_000_000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), long.MaxValue])),
        _ => new StartPosition((StartPositionKind)random.Next(4), EdgeLong(random)),
    };

    /// <summary>Names that break each naming rule, the longest allowed, and fresh valid ones (see FreshTopic).</summary>
    private static string EdgeTopic(Random random) => Pick(random,
    [
        string.Empty, ".", "..", ".hidden", "a/b", "../escape", "has space", "café", "a\0b", "FUZZ-A", "fuzz-a", "fuzz-b",
        new string('t', ProtocolLimits.DefaultMaxTopicNameLength), new string('t', ProtocolLimits.DefaultMaxTopicNameLength + 1),
        FreshTopic(random), FreshTopic(random), FreshTopic(random), FreshTopic(random),
    ]);

    /// <summary>One of 64 topic names no seed uses, so the fuzzers create a bounded number of topics.</summary>
    private static string FreshTopic(Random random) => $"fuzz-new-{random.Next(64)}";

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];

    private static byte[] MutateOnce(byte[] input, Random random, out string description)
    {
        var bytes = input.ToArray();
        var bodyStart = ProtocolLimits.LengthPrefixSize + 1;
        switch (random.Next(14))
        {
            case 0:
            {
                var flips = random.Next(1, 4);
                for (var i = 0; i < flips && bytes.Length > 0; i++)
                {
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                }

                description = $"{flips} bit flip(s)";
                return bytes;
            }

            case 1:
            {
                if (bytes.Length == 0)
                {
                    description = "replace (empty)";
                    return bytes;
                }

                var at = random.Next(bytes.Length);
                bytes[at] = InterestingByte(random);
                description = $"byte {at} replaced by 0x{bytes[at]:X2}";
                return bytes;
            }

            case 2:
            {
                var keep = random.Next(bytes.Length + 1);
                description = $"truncated to {keep} bytes";
                return bytes[..keep];
            }

            case 3:
            {
                var at = random.Next(bytes.Length + 1);
                var extra = RandomChunk(random, random.Next(1, 9));
                description = $"{extra.Length} bytes inserted at {at}";
                return [.. bytes[..at], .. extra, .. bytes[at..]];
            }

            case 4:
            {
                if (bytes.Length == 0)
                {
                    description = "remove (empty)";
                    return bytes;
                }

                var at = random.Next(bytes.Length);
                var length = random.Next(1, Math.Min(8, bytes.Length - at) + 1);
                description = $"{length} bytes removed at {at}";
                return [.. bytes[..at], .. bytes[(at + length)..]];
            }

            case 5:
            {
                var declared = DeclaredLength(bytes);
                var bigger = declared + (uint)random.Next(1, 17);
                description = $"length prefix raised from {declared} to {bigger}";
                return WithLength(bytes, bigger);
            }

            case 6:
            {
                var declared = DeclaredLength(bytes);
                var smaller = declared == 0 ? 0 : (uint)random.NextInt64(declared);
                description = $"length prefix lowered from {declared} to {smaller}";
                return WithLength(bytes, smaller);
            }

            case 7:
                description = "length prefix 0";
                return WithLength(bytes, 0);

            case 8:
            {
                uint[] huge = [ProtocolLimits.DefaultMaxFrameSize, ProtocolLimits.DefaultMaxFrameSize + 1, int.MaxValue, (uint)int.MaxValue + 1, uint.MaxValue, (uint)random.NextInt64(uint.MaxValue)];
                var length = huge[random.Next(huge.Length)];
                description = $"length prefix {length}";
                return WithLength(bytes, length);
            }

            case 9:
            {
                if (bytes.Length <= ProtocolLimits.LengthPrefixSize)
                {
                    description = "type change (no type byte)";
                    return bytes;
                }

                bytes[ProtocolLimits.LengthPrefixSize] = (byte)AnyType(random);
                description = $"type byte 0x{bytes[ProtocolLimits.LengthPrefixSize]:X2}";
                return bytes;
            }

            case 10:
            {
                // Body bytes added with the length prefix kept consistent, so the frame gets past the framing.
                var at = Math.Min(bodyStart + random.Next(Math.Max(1, bytes.Length - bodyStart + 1)), bytes.Length);
                var extra = RandomChunk(random, random.Next(1, 9));
                description = $"{extra.Length} body bytes inserted at {at}, length fixed";
                return FixLength([.. bytes[..at], .. extra, .. bytes[at..]]);
            }

            case 11:
            {
                if (bytes.Length <= bodyStart)
                {
                    description = "body removal (no body)";
                    return bytes;
                }

                var at = random.Next(bodyStart, bytes.Length);
                var length = random.Next(1, Math.Min(8, bytes.Length - at) + 1);
                description = $"{length} body bytes removed at {at}, length fixed";
                return FixLength([.. bytes[..at], .. bytes[(at + length)..]]);
            }

            case 12:
            {
                // An inner count (string, key or bytes length) blown up, overwriting 2 or 4 bytes with a big value.
                if (bytes.Length < bodyStart + 4)
                {
                    description = "inner length (body too short)";
                    return bytes;
                }

                var at = random.Next(bodyStart, bytes.Length - 3);
                var wide = random.Next(2) == 0;
                if (wide)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at), random.Next(2) == 0 ? uint.MaxValue : (uint)random.Next(1, 70_000));
                }
                else
                {
                    BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(at), random.Next(2) == 0 ? ushort.MaxValue : (ushort)random.Next(1, 300));
                }

                description = $"inner {(wide ? "u32" : "u16")} count at {at} overwritten";
                return bytes;
            }

            default:
            {
                var other = Seeds[random.Next(Seeds.Count)].Bytes;
                description = "followed by another seed";
                return [.. bytes, .. other];
            }
        }
    }

    private static List<SeedFrame> BuildSeeds()
    {
        var key = "key-1"u8.ToArray();
        var small = "payload"u8.ToArray();
        var kib = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7)).ToArray();
        var large = Enumerable.Range(0, 100 * 1024).Select(i => (byte)(i % 251)).ToArray();
        var headerBlock = new ArrayBufferWriter<byte>();
        HeaderBlock.WriteEntry(headerBlock, "trace-id", isText: true, "4bf92f3577b34da6"u8);
        HeaderBlock.WriteEntry(headerBlock, "raw", isText: false, [0, 0xFF]);
        var headers = headerBlock.WrittenSpan.ToArray();
        var seeds = new List<SeedFrame>();

        Add("Hello current", w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current)));
        Add("Hello current with token", w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, 0, "fuzz-token-000001")));
        Add("Hello current with producer id", w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, 0, null, ProducerId: 0x0123_4567_89AB_CDEF)));
        Add("Hello v7 with token and producer id", w => FrameWriter.Write(w, new HelloFrame(7, 0, "fuzz-token-000007", ProducerId: 7)));
        Add("Hello v9", w => FrameWriter.Write(w, new HelloFrame(9)));
        Add("Hello v6", w => FrameWriter.Write(w, new HelloFrame(6)));
        Add("Hello v4", w => FrameWriter.Write(w, new HelloFrame(4)));
        Add("Hello v3", w => FrameWriter.Write(w, new HelloFrame(3)));
        Add("Hello v2", w => FrameWriter.Write(w, new HelloFrame(2)));
        Add("Hello v1", w => FrameWriter.Write(w, new HelloFrame(1)));
        Add("Hello v65535", w => FrameWriter.Write(w, new HelloFrame(ushort.MaxValue)));

        Add("CreateTopic defaults", w => FrameWriter.Write(w, new CreateTopicFrame(1, "fuzz-a", 0, 0)));
        Add("CreateTopic retention+compaction", w => FrameWriter.Write(w, new CreateTopicFrame(2, "fuzz-b", 60_000, 5_000, Durability.Interval, 50)));
        Add("CreateTopic Always", w => FrameWriter.Write(w, new CreateTopicFrame(3, "fuzz-always", 0, 0, Durability.Always)));
        Add("CreateTopic Memory", w => FrameWriter.Write(w, new CreateTopicFrame(4, "fuzz-memory", 1_000, 0, Durability.Memory)));
        Add("CreateTopic latest value per key", w => FrameWriter.Write(w, new CreateTopicFrame(5, "fuzz-latest", 0, 0, KeepLatestPerKey: true, TombstoneRetentionMs: 60_000)));

        Add("Publish unkeyed", w => FrameWriter.Write(w, new PublishFrame(10, "fuzz-a", null, small)));
        Add("Publish keyed", w => FrameWriter.Write(w, new PublishFrame(11, "fuzz-b", key, small)));
        Add("Publish empty key, empty payload", w => FrameWriter.Write(w, new PublishFrame(12, "fuzz-a", Array.Empty<byte>(), Array.Empty<byte>())));
        Add("Publish 1 KiB", w => FrameWriter.Write(w, new PublishFrame(ulong.MaxValue, "fuzz-a", null, kib)));
        Add("Publish 100 KiB", w => FrameWriter.Write(w, new PublishFrame(13, "fuzz-b", key, large)));
        Add("Publish with headers", w => FrameWriter.Write(w, new PublishFrame(14, "fuzz-a", null, small, Headers: headers)));
        Add("Publish idempotent", w => FrameWriter.Write(w, new PublishFrame(15, "fuzz-b", key, small, ProducerSequence: 1)));

        Add("Subscribe Retained", w => FrameWriter.Write(w, new SubscribeFrame(20, "fuzz-a", StartPosition.Retained, 1)));
        Add("Subscribe Latest prefetch 10000", w => FrameWriter.Write(w, new SubscribeFrame(21, "fuzz-b", StartPosition.Latest, 10_000)));
        Add("Subscribe durable", w => FrameWriter.Write(w, new SubscribeFrame(22, "fuzz-b", StartPosition.Retained, 5, "billing")));
        Add("Subscribe Sequence", w => FrameWriter.Write(w, new SubscribeFrame(23, "fuzz-b", StartPosition.Sequence(2), 10)));
        Add("Subscribe Time durable", w => FrameWriter.Write(w, new SubscribeFrame(24, "fuzz-a", StartPosition.Time(1_700_000_000_000), 1, "audit")));
        Add("Subscribe group", w => FrameWriter.Write(w, new SubscribeFrame(25, "fuzz-b", StartPosition.Retained, 10, Group: "workers", AckWaitMs: 1_000, MaxDeliver: 3, DeadLetterTopic: "fuzz-dead")));
        Add("Subscribe group defaults", w => FrameWriter.Write(w, new SubscribeFrame(26, "fuzz-a", StartPosition.Latest, 1, Group: "workers")));

        Add("Unsubscribe", w => FrameWriter.Write(w, new UnsubscribeFrame(30, "fuzz-a")));
        Add("Commit bare", w => FrameWriter.Write(w, CommitFrame.All));
        Add("Commit scoped", w => FrameWriter.Write(w, new CommitFrame("fuzz-b", 4096)));
        Add("Commit single", w => FrameWriter.Write(w, new CommitFrame("fuzz-b", 2, Single: true)));
        Add("Nack", w => FrameWriter.Write(w, new NackFrame("fuzz-b", 2)));
        Add("Nack delayed", w => FrameWriter.Write(w, new NackFrame("fuzz-a", 1, 250)));
        Add("Close", w => FrameWriter.Write(w, default(CloseFrame)));
        Add("Ping", w => FrameWriter.Write(w, new PingFrame(7)));
        Add("Pong", w => FrameWriter.Write(w, new PongFrame(ulong.MaxValue)));

        Add("Message keyed", w => FrameWriter.Write(w, new MessageFrame("fuzz-a", 64, 1_700_000_000_000, key, small)));
        Add("Message unkeyed 1 KiB", w => FrameWriter.Write(w, new MessageFrame("fuzz-b", long.MaxValue, 0, null, kib)));
        Add("Message 100 KiB", w => FrameWriter.Write(w, new MessageFrame("fuzz-b", 128, 1, null, large)));
        Add("Message with headers", w => FrameWriter.Write(w, new MessageFrame("fuzz-a", 65, 1_700_000_000_000, null, small, headers)));
        Add("Message redelivered", w => FrameWriter.Write(w, new MessageFrame("fuzz-b", 66, 1_700_000_000_000, key, small, DeliveryCount: 3)));
        Add("Ack publish", w => FrameWriter.Write(w, new AckFrame(10, 64, false, true)));
        Add("Ack duplicate", w => FrameWriter.Write(w, new AckFrame(11, 64, true)));
        Add("Ack subscribe", w => FrameWriter.Write(w, new AckFrame(20, 1, false)));
        Add("Ack no sequence", w => FrameWriter.Write(w, new AckFrame(30, null, false)));
        Add("Error with request", w => FrameWriter.Write(w, new ErrorFrame(12, ErrorCode.InvalidTopicName, "bad name")));
        Add("Error connection, multi-byte text", w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.MalformedFrame, "🐇ж broke")));
        Add("Error NotLeader", w => FrameWriter.Write(w, new ErrorFrame(14, ErrorCode.NotLeader, "node n2 leads topic 'fuzz-a'; connect to 127.0.0.1:7002")));
        Add("Redirect", w => FrameWriter.Write(w, new RedirectFrame(13, "fuzz-a", "n2", "127.0.0.1:7002")));
        Add("Redirect WebSocket, no request", w => FrameWriter.Write(w, new RedirectFrame(null, "fuzz-b", "узел-3", "ws://[::1]:8891/ws")));

        return seeds;

        void Add(string name, Action<IBufferWriter<byte>> write) => seeds.Add(new SeedFrame(name, Encode(write)));
    }

    private static uint DeclaredLength(byte[] bytes) =>
        bytes.Length >= ProtocolLimits.LengthPrefixSize ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : 0;

    private static byte[] WithLength(byte[] bytes, uint length)
    {
        if (bytes.Length < ProtocolLimits.LengthPrefixSize)
        {
            return bytes;
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
        return bytes;
    }

    private static byte[] FixLength(byte[] bytes) =>
        WithLength(bytes, (uint)Math.Max(0, bytes.Length - ProtocolLimits.LengthPrefixSize));

    private static byte[] RandomChunk(Random random, int length)
    {
        var chunk = new byte[length];
        for (var i = 0; i < length; i++)
        {
            chunk[i] = InterestingByte(random);
        }

        return chunk;
    }

    private static byte InterestingByte(Random random)
    {
        byte[] interesting = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xC0, 0xED, 0xF0, 0xFF];
        return random.Next(2) == 0 ? interesting[random.Next(interesting.Length)] : (byte)random.Next(256);
    }

    /// <summary>Mostly defined frame types (so bodies get decoded), sometimes anything.</summary>
    private static int AnyType(Random random)
    {
        var defined = Enum.GetValues<FrameType>();
        return random.Next(4) == 0 ? random.Next(256) : (int)defined[random.Next(defined.Length)];
    }
}

/// <summary>The seed a fuzz run uses: ZAICHIK_FUZZ_SEED when set (to replay a failure), otherwise a fresh one.</summary>
internal static class FuzzSeed
{
    public const string Variable = "ZAICHIK_FUZZ_SEED";

    public static int Next() =>
        int.TryParse(Environment.GetEnvironmentVariable(Variable), out var seed) ? seed : Random.Shared.Next();

    public static string Replay(int seed) => $"seed {seed} (replay with {Variable}={seed})";

    /// <summary>At most <paramref name="max"/> bytes as hex, for failure messages.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes, int max = 96)
    {
        var text = new StringBuilder(Convert.ToHexString(bytes[..Math.Min(bytes.Length, max)]));
        if (bytes.Length > max)
        {
            text.Append($"... ({bytes.Length} bytes)");
        }

        return text.ToString();
    }
}
