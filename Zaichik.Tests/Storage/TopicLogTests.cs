using Zaichik.Server.Storage;

namespace Zaichik.Tests.Storage;

public sealed class TopicLogTests
{
    [Fact]
    public async Task Seek_by_timestamp_lands_within_one_page_before_the_first_record_at_that_time()
    {
        var directory = Path.Combine(Path.GetTempPath(), "zaichik-seek-" + Guid.NewGuid().ToString("N"));
        var storage = new StorageOptions { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 20 };
        try
        {
            await using var log = TopicLog.Open(directory, storage);
            var entry = new byte[512];
            var addresses = new List<long>();
            for (var i = 0; i < 2_000; i++)
            {
                var length = LogRecord.WriteWhole(entry, timestampMs: i * 10, false, default, new byte[200]);
                addresses.Add(await log.AppendAsync(entry.AsMemory(0, length), CancellationToken.None));
            }

            await log.CommitAsync(CancellationToken.None);

            foreach (var target in new[] { 0, 5, 10_000, 12_345, 19_990, 50_000 })
            {
                var firstAtOrAfter = addresses.FindIndex(a => addresses.IndexOf(a) * 10 >= target);
                var seek = await log.SeekTimestampAsync(target, CancellationToken.None);

                var expected = firstAtOrAfter < 0 ? log.TailAddress : addresses[firstAtOrAfter];
                seek.ShouldBeLessThanOrEqualTo(expected, $"seek to {target} must not skip a record at or after it");
                (expected - seek).ShouldBeLessThanOrEqualTo(1 << storage.PageSizeBits, $"seek to {target} should land within a page of it");
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Records_in_a_new_segment_count_as_committed_only_after_the_folder_is_flushed()
    {
        var directory = Path.Combine(Path.GetTempPath(), "zaichik-segments-" + Guid.NewGuid().ToString("N"));
        var storage = new StorageOptions { PageSizeBits = 12, MemorySizeBits = 14, SegmentSizeBits = 16 };
        try
        {
            await using var log = TopicLog.Open(directory, storage);
            var entry = new byte[1024];
            var segments = new HashSet<long>();
            for (var i = 0; i < 400; i++)
            {
                var length = LogRecord.WriteWhole(entry, timestampMs: i, false, default, new byte[900]);
                var address = await log.AppendAsync(entry.AsMemory(0, length), CancellationToken.None);
                segments.Add(address >> storage.SegmentSizeBits);
                await log.CommitAsync(CancellationToken.None);
                log.CommittedUntilAddress.ShouldBeGreaterThan(address);
            }

            // 400 records of about 1 KiB cross several 64 KiB segments; each new one flushed the folder once.
            segments.Count.ShouldBeGreaterThan(4);
            log.DirectorySyncs.ShouldBe(segments.Count);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
