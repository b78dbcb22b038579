using System.Buffers;
using System.Diagnostics;
using Xunit.Abstractions;
using Zaichik.Protocol;

namespace Zaichik.Tests.Fuzz;

/// <summary>
/// Random and mutated bytes through the <see cref="FrameReader"/>: it may refuse them only with a
/// <see cref="ProtocolViolationException"/>, must never wait on a frame it already holds or consume without a frame,
/// must read the same frames however the bytes are cut into segments and arrivals, and must not keep a large buffer.
/// </summary>
public sealed class CodecFuzzTests(ITestOutputHelper output)
{
    private const int MutatedCases = 30_000;
    private const int RandomCases = 10_000;

    /// <summary>Inputs up to this size are also fed one byte per arrival; longer ones only in random arrivals.</summary>
    private const int ByteByByteLimit = 512;

    /// <summary>The FrameReader's own limit on the scratch buffer it keeps between frames.</summary>
    private const int ScratchKeepLimit = 64 * 1024;

    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(120);

    [Fact]
    public void Every_frame_type_has_a_seed_and_a_codec_entry()
    {
        foreach (var type in Enum.GetValues<FrameType>())
        {
            FuzzCorpus.Seeds.ShouldContain(seed => seed.Type == type, $"FuzzCorpus has no seed of type {type}; add one so the fuzzers cover it");
        }
    }

    [Fact]
    public void Every_seed_is_read_whole_and_re_encodes_to_itself()
    {
        var reader = new FrameReader();
        foreach (var seed in FuzzCorpus.Seeds)
        {
            var signature = ReaderHarness.Feed(reader, seed.Bytes, ReaderHarness.Whole(seed.Bytes), 1, new Random(0));

            signature.ShouldStartWith($"{seed.Type}/", customMessage: $"seed '{seed.Name}' read as: {signature}");
            signature.ShouldEndWith("end", customMessage: $"seed '{seed.Name}' read as: {signature}");
        }
    }

    [Fact]
    public async Task Random_and_mutated_bytes_raise_only_protocol_violations_in_any_segmentation()
    {
        var seed = FuzzSeed.Next();
        output.WriteLine($"Fuzzing the FrameReader with {FuzzSeed.Replay(seed)}");

        var stats = await Task.Run(() => Fuzz(seed)).WaitAsync(HangGuard);

        output.WriteLine(stats.ToString());
        stats.FramesDecoded.ShouldBeGreaterThan(0, "the fuzzer should get some frames past the framing");
        stats.DecodeViolations.ShouldBeGreaterThan(0, "the fuzzer should reach the field decoders with bad fields");
    }

    private static FuzzStats Fuzz(int seed)
    {
        var random = new Random(seed);
        var stopwatch = Stopwatch.StartNew();
        var stats = new FuzzStats();

        // Long-lived readers, as on a connection that has seen every earlier case; one with a small limit so
        // FrameTooLarge also comes from frames that exist.
        var readers = new[] { new FrameReader(), new FrameReader(maxFrameSize: 1024) };
        var peakScratch = 0;

        for (var index = 0; index < MutatedCases + RandomCases; index++)
        {
            string description;
            byte[] input;
            if (index < MutatedCases)
            {
                // The 100 KiB seeds (for the scratch buffer) cost far more per case than the rest; one case in 25 is enough.
                var pool = random.Next(25) == 0 ? FuzzCorpus.Seeds : FuzzCorpus.SmallSeeds;
                var origin = pool[random.Next(pool.Count)];
                var start = origin.Bytes;
                description = $"'{origin.Name}'";
                if (random.Next(4) == 0)
                {
                    start = FuzzCorpus.MutateField(origin, random, out var field);
                    description = field;
                }

                input = FuzzCorpus.Mutate(start, random, out var mutation);
                description += $" with {mutation}";
            }
            else
            {
                input = FuzzCorpus.RandomBytes(random);
                description = "random bytes";
            }

            var reader = readers[random.Next(10) == 0 ? 1 : 0];
            var mode = "contiguous";
            try
            {
                var expected = ReaderHarness.Feed(reader, input, ReaderHarness.Whole(input), 1, random);

                mode = "multi-segment";
                Same(expected, ReaderHarness.Feed(reader, input, ReaderHarness.Whole(input), 8, random));

                mode = "random arrivals";
                Same(expected, ReaderHarness.Feed(reader, input, ReaderHarness.RandomArrivals(input, random), 3, random));

                if (input.Length <= ByteByByteLimit)
                {
                    mode = "byte by byte";
                    Same(expected, ReaderHarness.Feed(reader, input, ReaderHarness.ByteByByte(input), 1, random));
                }

                peakScratch = Math.Max(peakScratch, reader.ScratchCapacity);
                var scratch = ScratchAfterNextRead(reader);
                scratch.ShouldBeLessThanOrEqualTo(ScratchKeepLimit, "the reader keeps a large scratch buffer after the frame that needed it");
                stats.Count(expected);
            }
            catch (Exception failure)
            {
                throw new ShouldAssertException(
                    $"case {index} ({description}), fed {mode} to a reader with limit {reader.MaxFrameSize}, with {FuzzSeed.Replay(seed)}: "
                    + $"{failure.GetType().Name}: {failure.Message}\ninput: {FuzzSeed.Hex(input)}",
                    failure);
            }
        }

        stats.Cases = MutatedCases + RandomCases;
        stats.PeakScratchBytes = peakScratch;
        stats.Elapsed = stopwatch.Elapsed;
        return stats;
    }

    private static void Same(string expected, string actual)
    {
        if (expected != actual)
        {
            throw new ReaderContractException($"read differently when segmented: expected [{expected}], got [{actual}]");
        }
    }

    /// <summary>The scratch buffer the reader holds once it is asked for the next frame (when it lets a large one go).</summary>
    private static int ScratchAfterNextRead(FrameReader reader)
    {
        var empty = ReadOnlySequence<byte>.Empty;
        reader.TryRead(ref empty, out _).ShouldBeFalse();
        return reader.ScratchCapacity;
    }

    private sealed class FuzzStats
    {
        public int Cases { get; set; }

        public int FramesDecoded { get; private set; }

        public int FramingViolations { get; private set; }

        public int DecodeViolations { get; private set; }

        public int Pending { get; private set; }

        public int PeakScratchBytes { get; set; }

        public TimeSpan Elapsed { get; set; }

        public void Count(string signature)
        {
            FramesDecoded += signature.Split(' ').Count(part => part.Contains('/'));
            if (signature.Contains("framing", StringComparison.Ordinal))
            {
                FramingViolations++;
            }
            else if (signature.EndsWith("malformed", StringComparison.Ordinal))
            {
                DecodeViolations++;
            }
            else if (signature.Contains("pending", StringComparison.Ordinal))
            {
                Pending++;
            }
        }

        public override string ToString() =>
            $"{Cases:N0} cases in {Elapsed.TotalSeconds:0.0} s: {FramesDecoded:N0} frames decoded and re-encoded, "
            + $"{FramingViolations:N0} refused by framing, {DecodeViolations:N0} by a field decoder, {Pending:N0} left waiting for more bytes; "
            + $"largest scratch buffer grown for a frame: {PeakScratchBytes:N0} bytes (at most {ScratchKeepLimit:N0} kept past the next read)";
    }
}
