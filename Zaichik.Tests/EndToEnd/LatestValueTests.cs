using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Storage;

namespace Zaichik.Tests.EndToEnd;

/// <summary>KeepLatestPerKey (log compaction): one message per key after compaction, tombstones, live delivery, restarts, disk.</summary>
public sealed class LatestValueTests(ITestOutputHelper output)
{
    private static readonly TopicOptions Latest = new()
    {
        KeepLatestPerKey = true,
        RetentionTtl = TimeSpan.FromHours(1),
        TombstoneRetention = TimeSpan.FromMinutes(1),
        Durability = Durability.Always,
    };

    /// <summary>
    /// Every sweep compacts whatever the log holds beyond the compacted part; segments are small enough to be freed. Only
    /// the test sweeps (the background one waits an hour), and topics stay open across fake-clock jumps.
    /// </summary>
    private static ZaichikServerOptions CompactEverySweep(ZaichikServerOptions options) => options with
    {
        MinCompactionBytes = 0,
        MinCleanableDirtyRatio = 0,
        SweepInterval = TimeSpan.FromHours(1),
        TopicIdleTimeout = TimeSpan.FromDays(1),
        Storage = new StorageOptions { PageSizeBits = 12, MemorySizeBits = 14, SegmentSizeBits = 16 },
    };

    [Fact]
    public async Task A_key_window_survives_a_restart_when_a_compaction_pass_moved_its_value_into_the_compacted_file()
    {
        // Found by TimedModelTests: a tombstone's retention running out makes the sweep's compaction pass move every kept
        // message into the compacted file and empty the log. The restart then took the topic's newest message for the
        // log's (none) and rebuilt no key window, so a repeat inside the window was stored.
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        var options = new TopicOptions
        {
            RetentionTtl = TimeSpan.FromSeconds(6), KeepLatestPerKey = true, TombstoneRetention = TimeSpan.FromSeconds(2), CompactionWindow = TimeSpan.FromSeconds(3),

            // A pass takes only what is on disk: with the default durability it could run before the commit on the
            // fake clock, and the clock does not move again to start another.
            Durability = Durability.Always,
        };
        await client.CreateTopicAsync("windowed-table", options);
        await client.PublishTombstoneAsync("windowed-table", "gone");
        var stored = await client.PublishAsync("windowed-table", "v1", "k");
        time.Advance(TimeSpan.FromSeconds(2));
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        server.Registry.TryGet("windowed-table", out var topic).ShouldBeTrue();

        // (The sweep on the timer, which the clock's move also started, may be the one that runs the pass.)
        await TestServer.EventuallyAsync(() => topic.Current?.Log.Compacted is { Count: 1 }, "a compaction pass keeps the one value in the compacted file");

        await server.RestartAsync();
        client = await server.ConnectAsync();
        time.Advance(TimeSpan.FromMilliseconds(999));
        var repeat = await client.PublishAsync("windowed-table", "v2", "k");

        (repeat.Sequence, repeat.Duplicate).ShouldBe((stored.Sequence, true), "the key was accepted 2.999 s ago, inside its 3 s window");
        time.Advance(TimeSpan.FromMilliseconds(1));
        (await client.PublishAsync("windowed-table", "v3", "k")).Duplicate.ShouldBeFalse("the window has run out");
    }

    [Fact]
    public async Task After_compaction_a_subscriber_from_the_start_sees_the_newest_message_of_each_key_with_its_sequence_and_the_unkeyed_ones()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("table", Latest);
        var newest = new Dictionary<string, (long Sequence, string Payload)>();
        var unkeyed = new List<long>();
        for (var round = 0; round < 50; round++)
        {
            for (var key = 0; key < 20; key++)
            {
                var payload = $"k{key}-v{round}";
                newest[$"k{key}"] = ((await client.PublishAsync("table", payload, key: $"k{key}")).Sequence, payload);
            }

            if (round % 10 == 0)
            {
                unkeyed.Add((await client.PublishAsync("table", $"plain-{round}")).Sequence);
            }
        }

        var beforeCompaction = await ReadAllAsync(await server.ConnectAsync(), client, "table", "end-1");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var seen = await ReadAllAsync(await server.ConnectAsync(), client, "table", "end-2");

        var expected = newest.Values.Select(value => value.Sequence).Concat(unkeyed).Append(beforeCompaction[^1].Sequence).Order().ToList();
        beforeCompaction.Select(message => message.Sequence).ShouldBe(expected, "readers skip superseded values before any compaction");
        seen.Select(message => message.Sequence).ShouldBe([.. expected, seen[^1].Sequence], "exactly the newest of each key and every unkeyed message, in sequence order");
        seen.Where(message => message.Key is not null).ShouldAllBe(message => message.PayloadText == newest[message.KeyText!].Payload);
        server.Registry.TryGet("table", out var topic).ShouldBeTrue();
        topic.Counters.Compacted.ShouldBe(1_000 - 20, "every superseded value is removed by the pass");
        topic.Current!.Log.Compacted.ShouldNotBeNull().Count.ShouldBe(20 + unkeyed.Count + 1, "the first end too");
        topic.Current!.Log.FirstSequence.ShouldBe(unkeyed[0], "the oldest message kept is the first unkeyed one");
    }

    [Fact]
    public async Task Compaction_frees_the_disk_of_superseded_values()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("sized", Latest);
        var payload = new string('x', 1_000);
        var publishes = new List<Task<PublishResult>>();
        for (var round = 0; round < 150; round++)
        {
            for (var key = 0; key < 10; key++)
            {
                publishes.Add(client.PublishAsync("sized", payload, key: $"k{key}").AsTask());
            }
        }

        await Task.WhenAll(publishes);

        var before = (await server.State.TopicAsync("sized", CancellationToken.None))!.Topic.BytesOnDisk;

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        // The truncation frees whole segments at the topic's next flush, which the sweep asked for.
        long after = 0;
        await TestServer.EventuallyAsync(() => (after = TopicBytes(server, "sized")) < 256 * 1024, "the segments below the cut are deleted");
        var compacted = new FileInfo(server.Registry.TryGet("sized", out var topic) ? topic.Current!.Log.Compacted!.Path : "").Length;
        output.WriteLine($"1,500 messages of 1,000 bytes, 10 keys: {before:N0} bytes on disk before compaction, {after:N0} after ({compacted:N0} in the compacted file)");
        before.ShouldBeGreaterThan(1_500_000);
        compacted.ShouldBeLessThan(16 * 1024, "ten values of about 1 KB, in 4 KiB pages");
        (await ReadAllAsync(client, client, "sized")).Count.ShouldBe(11);
    }

    [Fact]
    public async Task A_tombstone_hides_older_values_at_once_and_the_key_is_gone_after_its_retention()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(CompactEverySweep, time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("deleting", Latest);
        await client.PublishAsync("deleting", "a1", key: "a");
        await client.PublishAsync("deleting", "b1", key: "b");
        var tombstone = await client.PublishTombstoneAsync("deleting", "a");

        var first = await ReadAllAsync(client, client, "deleting", "end-1");
        time.Advance(TimeSpan.FromMinutes(1));
        var afterRetention = await ReadAllAsync(client, client, "deleting", "end-2");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var afterSweep = await ReadAllAsync(client, client, "deleting", "end-3");

        first.Select(Describe).ShouldBe(["b=b1", "a=(tombstone)", "end-1"], "a1 is superseded by the tombstone, which is delivered within its retention");
        first[1].Sequence.ShouldBe(tombstone.Sequence);
        afterRetention.Select(Describe).ShouldBe(["b=b1", "end-1", "end-2"], "past its retention the tombstone is skipped by readers before any sweep");
        afterSweep.Select(Describe).ShouldBe(["b=b1", "end-1", "end-2", "end-3"]);
        server.Registry.TryGet("deleting", out var topic).ShouldBeTrue();
        topic.Current!.Latest!.Count.ShouldBe(1, "the key is forgotten once its tombstone is removed");
        topic.Counters.Compacted.ShouldBe(2, "a1, then the tombstone");
    }

    [Fact]
    public async Task A_live_subscriber_gets_every_value_as_it_is_stored_while_compaction_runs()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("live", Latest);
        await using var reader = new MessageReader(await (await server.ConnectAsync()).SubscribeAsync("live", new SubscribeOptions { From = StartPosition.Latest, AutoCommit = true }));

        var received = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            await publisher.PublishAsync("live", $"v{i}", key: "only");
            received.Add((await reader.NextAsync()).PayloadText);
            if (i % 10 == 9)
            {
                await server.Maintenance.SweepAllAsync(CancellationToken.None);
            }
        }

        received.ShouldBe(Enumerable.Range(0, 30).Select(i => $"v{i}"));
        server.Registry.TryGet("live", out var topic).ShouldBeTrue();
        topic.Counters.Compacted.ShouldBeGreaterThan(0, "the superseded values were compacted meanwhile");
    }

    [Fact]
    public async Task A_key_window_outlives_a_tombstone_that_compaction_removed_across_a_restart()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(CompactEverySweep, time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("sessions", Latest with { CompactionWindow = TimeSpan.FromHours(1) });
        var tombstone = await client.PublishTombstoneAsync("sessions", "gone");
        await client.PublishAsync("sessions", "kept", key: "other");
        tombstone.Duplicate.ShouldBeFalse("the first of its key inside the window");

        // Past the tombstone's minute, inside its key's hour: the pass removes it, then the broker restarts.
        time.Advance(TimeSpan.FromMinutes(2));
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        server.Registry.TryGet("sessions", out var topic).ShouldBeTrue();
        topic.Counters.Compacted.ShouldBe(1, "the expired tombstone was compacted away");
        await server.RestartAsync();
        client = await server.ConnectAsync();

        var repeat = await client.PublishAsync("sessions", "back", key: "gone");
        (repeat.Duplicate, repeat.Sequence).ShouldBe((true, tombstone.Sequence), "the key was accepted two minutes ago, inside its hour");
        (await ReadAllAsync(client, client, "sessions", "end")).Select(Describe).ShouldBe(["other=kept", "end"]);
    }

    [Fact]
    public async Task Compaction_and_tombstones_hold_across_a_restart()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(CompactEverySweep, time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("durable-table", Latest);
        for (var round = 0; round < 5; round++)
        {
            foreach (var key in new[] { "a", "b", "c" })
            {
                await client.PublishAsync("durable-table", $"{key}{round}", key: key);
            }
        }

        await client.PublishTombstoneAsync("durable-table", "b");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        // Beyond the compacted part, in the log: a newer value of a, and a new key.
        await client.PublishAsync("durable-table", "a5", key: "a");
        await client.PublishAsync("durable-table", "d0", key: "d");
        await server.RestartAsync();
        client = await server.ConnectAsync();

        var afterRestart = await ReadAllAsync(client, client, "durable-table", "end-1");
        time.Advance(TimeSpan.FromMinutes(1));
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        await server.RestartAsync();
        client = await server.ConnectAsync();
        var afterTombstone = await ReadAllAsync(client, client, "durable-table", "end-2");

        afterRestart.Select(Describe).ShouldBe(["c=c4", "b=(tombstone)", "a=a5", "d=d0", "end-1"]);
        afterTombstone.Select(Describe).ShouldBe(["c=c4", "a=a5", "d=d0", "end-1", "end-2"]);
        server.Registry.TryGet("durable-table", out var topic).ShouldBeTrue();
        topic.Current!.Latest!.Count.ShouldBe(3, "a, c and d: b was forgotten with its tombstone, and stays forgotten after the restart");
        Directory.GetFiles(topic.Directory, CompactedLog.Prefix + "*").Length.ShouldBe(1, "older generations are deleted");
    }

    [Fact]
    public async Task A_durable_consumer_resumes_past_superseded_values_and_gets_the_unkeyed_ones_it_did_not_commit()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("no-ttl", Latest with { RetentionTtl = TimeSpan.Zero });
        var options = new SubscribeOptions { DurableName = "billing", From = StartPosition.Latest, AutoCommit = true };
        await using (var away = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            await away.SubscribeAsync("no-ttl", options);
        }

        await publisher.PublishAsync("no-ttl", "x1", key: "x");
        await publisher.PublishAsync("no-ttl", "note-1");
        await publisher.PublishAsync("no-ttl", "x2", key: "x");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        var resumed = await ReadAllAsync(await server.ConnectAsync(), publisher, "no-ttl", "end", options);
        var fresh = await ReadAllAsync(await server.ConnectAsync(), publisher, "no-ttl", "end-2");

        resumed.Select(Describe).ShouldBe(["note-1", "x=x2", "end"], "the unkeyed message waited for the durable consumer, x1 did not");
        fresh.Select(Describe).ShouldBe(["x=x2", "end-2"], "without a TTL a new subscriber gets the newest values, and unkeyed messages from its start on only");
    }

    [Fact]
    public async Task MaxMessages_keeps_the_newest_messages_after_compaction()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("capped", Latest with { MaxMessages = 5 });
        for (var round = 0; round < 3; round++)
        {
            for (var key = 0; key < 10; key++)
            {
                await client.PublishAsync("capped", $"k{key}-v{round}", key: $"k{key}");
            }
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        var seen = await ReadAllAsync(client, client, "capped");

        seen.Select(Describe).ShouldBe(["k5=k5-v2", "k6=k6-v2", "k7=k7-v2", "k8=k8-v2", "k9=k9-v2", "end"]);
        server.Registry.TryGet("capped", out var topic).ShouldBeTrue();
        (topic.Counters.Compacted, topic.Counters.Trimmed).ShouldBe((20L, 5L));
    }

    [Fact]
    public async Task A_damaged_page_of_the_compacted_file_costs_only_its_messages_and_is_reported_as_a_hole()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("damaged", Latest);
        var payload = new string('y', 1_000);
        for (var key = 0; key < 30; key++)
        {
            await client.PublishAsync("damaged", payload, key: $"k{key:D2}");
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        server.Registry.TryGet("damaged", out var topic).ShouldBeTrue();
        var file = topic.Current!.Log.Compacted.ShouldNotBeNull().Path;
        await server.RestartAsync();

        // The second page (4 KiB) holds three or four of the 1 KB values: flip a byte in each of its entries' bodies.
        await using (var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite))
        {
            for (var offset = 4096 + 200; offset < 8192; offset += 512)
            {
                stream.Position = offset;
                var value = stream.ReadByte();
                stream.Position = offset;
                stream.WriteByte((byte)(value ^ 0xFF));
            }
        }

        client = await server.ConnectAsync();
        var seen = await ReadAllAsync(client, client, "damaged");

        var lost = 30 + 1 - seen.Count;
        lost.ShouldBeInRange(3, 4, "only the values on the damaged page");
        var state = (await server.State.TopicAsync("damaged", CancellationToken.None))!;
        state.HoleRanges.Sum(hole => hole.Last - hole.First + 1).ShouldBe(lost);
    }

    [Fact]
    public async Task A_reader_inside_the_compacted_part_keeps_it_and_the_log_below_the_next_cut_until_it_moves_on()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("slow", Latest);
        for (var round = 1; round <= 2; round++)
        {
            for (var key = 0; key < 5; key++)
            {
                await publisher.PublishAsync("slow", $"k{key}-r{round}", key: $"k{key}");
            }
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        server.Registry.TryGet("slow", out var topic).ShouldBeTrue();
        var log = topic.Current!.Log;
        var firstGeneration = log.Compacted.ShouldNotBeNull();
        var consumer = await server.ConnectAsync();
        await using var reader = new MessageReader(await consumer.SubscribeAsync("slow", new SubscribeOptions { Prefetch = 1 }));
        var first = await reader.NextAsync();

        for (var key = 0; key < 5; key++)
        {
            await publisher.PublishAsync("slow", $"k{key}-r3", key: $"k{key}");
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var secondGeneration = log.Compacted.ShouldNotBeNull();
        var heldBegin = log.BeginAddress;
        var end = (await publisher.PublishAsync("slow", "end")).Sequence;
        var rest = new List<ZaichikMessage>();
        var last = first;
        while (last.Sequence < end)
        {
            await consumer.CommitAsync(last);
            rest.Add(last = await reader.NextAsync());
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        first.PayloadText.ShouldBe("k0-r2");
        rest.Select(message => message.PayloadText).ShouldBe(["k0-r3", "k1-r3", "k2-r3", "k3-r3", "k4-r3", "end"],
            "the rest of the older file is superseded by now; the reader goes on in the log, which was not truncated under it");
        secondGeneration.Generation.ShouldBe(firstGeneration.Generation + 1);
        heldBegin.ShouldBeLessThan(secondGeneration.CutAddress, "the truncation waited for the reader");
        File.Exists(firstGeneration.Path).ShouldBeFalse("the older file is deleted once its last reader left");
        log.BeginAddress.ShouldBeGreaterThanOrEqualTo(secondGeneration.CutAddress, "and the log is truncated at the newer cut");
    }

    [Fact]
    public async Task Subscriptions_from_a_sequence_or_a_time_inside_the_compacted_part_start_there()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(CompactEverySweep, time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("seek", Latest);
        var stored = new List<(long Sequence, DateTimeOffset At)>();
        for (var key = 0; key < 40; key++)
        {
            stored.Add(((await client.PublishAsync("seek", new string('z', 300), key: $"k{key:D2}")).Sequence, time.GetUtcNow()));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        await client.PublishAsync("seek", "superseded-k00", key: "k00");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        var fromSequence = await ReadAllAsync(client, client, "seek", options: new SubscribeOptions { From = StartPosition.Sequence(stored[25].Sequence), Prefetch = 100, AutoCommit = true });
        var fromTime = await ReadAllAsync(client, client, "seek", "end-2", new SubscribeOptions { From = StartPosition.Time(stored[30].At), Prefetch = 100, AutoCommit = true });

        fromSequence.Select(message => message.KeyText).ShouldBe([.. Enumerable.Range(25, 15).Select(key => $"k{key:D2}"), "k00", null]);
        fromTime.Select(message => message.KeyText).ShouldBe([.. Enumerable.Range(30, 10).Select(key => $"k{key:D2}"), "k00", null, null]);
        fromSequence[0].Sequence.ShouldBe(stored[25].Sequence);
    }

    [Fact]
    public async Task A_message_larger_than_a_page_is_compacted_whole_with_its_headers()
    {
        await using var server = await TestServer.StartAsync(CompactEverySweep);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("large", Latest);
        var payload = Enumerable.Range(0, 20_000).Select(i => (byte)(i * 7)).ToArray();
        await client.PublishAsync("large", "small", key: "big");
        await client.PublishAsync("large", payload, "big"u8.ToArray(), new ZaichikHeaders().Add("kind", "blob"));
        await client.PublishAsync("large", "other", key: "other");

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        await server.RestartAsync();
        client = await server.ConnectAsync();
        var seen = await ReadAllAsync(client, client, "large");

        seen.Select(Describe).Skip(1).ShouldBe(["other=other", "end"]);
        seen[0].Payload.ToArray().ShouldBe(payload);
        seen[0].Headers.GetText("kind").ShouldBe("blob");
        server.Registry.TryGet("large", out var topic).ShouldBeTrue();
        topic.Current!.Log.Compacted.ShouldNotBeNull().Count.ShouldBe(2);
    }

    [Fact]
    public async Task CreateTopic_refuses_a_negative_tombstone_retention_and_one_without_KeepLatestPerKey()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(1, "negative", 0, 0, KeepLatestPerKey: true, TombstoneRetentionMs: -1)));
        var negative = await raw.ReceiveAsync();
        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(2, "stray", 0, 0, TombstoneRetentionMs: 1_000)));
        var stray = await raw.ReceiveAsync();

        negative.Error.ShouldNotBeNull().Code.ShouldBe(ErrorCode.InvalidArgument);
        stray.Error.ShouldNotBeNull().Code.ShouldBe(ErrorCode.InvalidArgument);
        server.Registry.TryGet("negative", out _).ShouldBeFalse();
        server.Registry.TryGet("stray", out _).ShouldBeFalse();
        var client = await server.ConnectAsync();
        await Should.ThrowAsync<ArgumentOutOfRangeException>(async () => await client.CreateTopicAsync("stray", new TopicOptions { TombstoneRetention = TimeSpan.FromMinutes(1) }));
    }

    [Fact]
    public async Task Creating_again_with_other_latest_value_settings_conflicts_and_the_admin_api_shows_them()
    {
        await using var server = await TestServer.StartAsync(options => CompactEverySweep(options) with { Admin = new AdminOptions { Url = "http://127.0.0.1:0" } });
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("settings", Latest with { TombstoneRetention = TimeSpan.Zero });
        await client.CreateTopicAsync("settings", Latest with { TombstoneRetention = TimeSpan.FromHours(24) });
        await client.PublishAsync("settings", "v1", key: "k");
        await client.PublishAsync("settings", "v2", key: "k");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        var conflicts = new[] { Latest with { KeepLatestPerKey = false, TombstoneRetention = TimeSpan.Zero }, Latest with { TombstoneRetention = TimeSpan.FromHours(1) } };
        foreach (var other in conflicts)
        {
            (await Should.ThrowAsync<ZaichikServerException>(async () => await client.CreateTopicAsync("settings", other))).Code.ShouldBe(ErrorCode.TopicSettingsConflict);
        }

        using var http = new HttpClient { BaseAddress = new Uri(server.Server.AdminUrl!) };
        var topic = await http.GetFromJsonAsync<JsonElement>("/api/topics/settings");
        var peek = await http.GetFromJsonAsync<JsonElement>("/api/topics/settings/messages");
        topic.GetProperty("keepLatestPerKey").GetBoolean().ShouldBeTrue();
        topic.GetProperty("tombstoneRetentionMs").GetInt64().ShouldBe(24 * 3_600_000, "0 takes the server's default, 24 hours");
        topic.GetProperty("keys").GetInt64().ShouldBe(1);
        topic.GetProperty("compacted").GetInt64().ShouldBe(1);
        peek.GetProperty("messages").EnumerateArray().Select(message => message.GetProperty("payload").GetString()).ShouldBe(["v2"]);
        (await http.GetStringAsync("/metrics")).Split('\n').ShouldContain(line => line.StartsWith("zaichik_messages_compacted_total", StringComparison.Ordinal) && line.EndsWith(" 1", StringComparison.Ordinal));
        var created = await http.PostAsJsonAsync("/api/topics", new { name = "from-admin", keepLatestPerKey = true, tombstoneRetentionMs = 5_000 });
        created.StatusCode.ShouldBe(System.Net.HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("tombstoneRetentionMs").GetInt64().ShouldBe(5_000);
    }

    private static string Describe(ZaichikMessage message) =>
        message.KeyText is { } key
            ? $"{key}={(message.Payload.IsEmpty && message.Headers.TryGetText(Tombstone.HeaderKey, out _) ? "(tombstone)" : message.PayloadText)}"
            : message.PayloadText;

    private static long TopicBytes(TestServer server, string topic) =>
        server.Registry.TryGet(topic, out var found) ? new DirectoryInfo(found.Directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(SizeOf) : 0;

    /// <summary>A file's size, or 0 for one deleted between listing and reading (a segment the truncation just freed).</summary>
    private static long SizeOf(FileInfo file)
    {
        try
        {
            return file.Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Subscribes, then has <paramref name="publisher"/> publish an unkeyed <paramref name="end"/>, and reads everything up
    /// to it: what the subscription delivers of what was stored before, and the end.
    /// </summary>
    private static async Task<List<ZaichikMessage>> ReadAllAsync(ZaichikClient client, ZaichikClient publisher, string topic, string end = "end", SubscribeOptions? options = null)
    {
        await using var reader = new MessageReader(await client.SubscribeAsync(topic, options ?? new SubscribeOptions { Prefetch = 1_000, AutoCommit = true }));
        var endSequence = (await publisher.PublishAsync(topic, end)).Sequence;
        var messages = new List<ZaichikMessage>();
        while (messages.Count == 0 || messages[^1].Sequence < endSequence)
        {
            messages.Add(await reader.NextAsync());
        }

        messages[^1].Sequence.ShouldBe(endSequence);
        return messages;
    }
}
