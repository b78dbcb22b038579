using System.Collections;
using Serilog.Events;
using Zaichik.Server.Hosting;

namespace Zaichik.Tests.Hosting;

public sealed class ConfigurationTests
{
    private static ZaichikServerOptions Bind(string[] args, Dictionary<string, string>? environment = null) =>
        ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build(args, new Hashtable(environment ?? [])));

    [Fact]
    public void Defaults_listen_on_loopback_8889_with_a_data_folder_in_the_working_directory()
    {
        var options = Bind([]);

        options.Host.ShouldBe("127.0.0.1");
        options.Port.ShouldBe(8889);
        options.DataPath.ShouldBe("data");
        options.Validate().ShouldBeEmpty();
    }

    [Fact]
    public void PORT_HOST_and_ZAICHIK_DATA_environment_variables_set_the_listener_and_data_folder()
    {
        var options = Bind([], new() { ["PORT"] = "9000", ["HOST"] = "0.0.0.0", ["ZAICHIK_DATA"] = "/tmp/zaichik" });

        options.Port.ShouldBe(9000);
        options.Host.ShouldBe("0.0.0.0");
        options.DataPath.ShouldBe("/tmp/zaichik");
    }

    [Fact]
    public void Command_line_data_switch_overrides_the_environment()
    {
        var options = Bind(["--data", "/from/args"], new() { ["ZAICHIK_DATA"] = "/from/env" });

        options.DataPath.ShouldBe("/from/args");
    }

    [Fact]
    public void Every_option_binds_from_prefixed_environment_variables_including_nested_storage_and_time_spans()
    {
        var options = Bind([], new()
        {
            ["Zaichik__MaxKeySize"] = "64",
            ["Zaichik__AutoCreateTopics"] = "false",
            ["Zaichik__CommitInterval"] = "00:00:00.250",
            ["Zaichik__Storage__SegmentSizeBits"] = "24",
        });

        options.MaxKeySize.ShouldBe(64);
        options.AutoCreateTopics.ShouldBeFalse();
        options.CommitInterval.ShouldBe(TimeSpan.FromMilliseconds(250));
        options.Storage.SegmentSizeBits.ShouldBe(24);
    }

    [Fact]
    public void Any_option_can_be_set_on_the_command_line()
    {
        var options = Bind(["--Zaichik:MaxPrefetch", "50", "--port", "7000"]);

        options.MaxPrefetch.ShouldBe(50);
        options.Port.ShouldBe(7000);
    }

    [Fact]
    public void Unparsable_value_is_reported_not_ignored()
    {
        Should.Throw<InvalidOperationException>(() => Bind([], new() { ["PORT"] = "not-a-port" }));
    }

    [Theory]
    [InlineData("debug", LogEventLevel.Debug)]
    [InlineData("Warning", LogEventLevel.Warning)]
    [InlineData(null, LogEventLevel.Information)]
    public void ZAICHIK_LOG_sets_the_log_level(string? value, LogEventLevel expected)
    {
        var environment = value is null ? new Hashtable() : new Hashtable { ["ZAICHIK_LOG"] = value };

        ZaichikConfiguration.LogLevel(ZaichikConfiguration.Build([], environment)).ShouldBe(expected);
    }

    [Fact]
    public void Unknown_log_level_is_reported()
    {
        Should.Throw<InvalidOperationException>(() => ZaichikConfiguration.LogLevel(ZaichikConfiguration.Build([], new Hashtable { ["ZAICHIK_LOG"] = "loud" })));
    }

    [Fact]
    public void Validation_names_every_bad_limit()
    {
        var options = ZaichikServerOptions.Default with { Port = 70_000, MaxPrefetch = 0, MaxTopicNameLength = 300 };

        var problems = options.Validate();

        problems.ShouldContain(p => p.Contains("Port"));
        problems.ShouldContain(p => p.Contains("MaxPrefetch"));
        problems.ShouldContain(p => p.Contains("MaxTopicNameLength"));
    }

    [Fact]
    public void Validation_refuses_a_key_limit_that_leaves_no_room_in_a_log_page()
    {
        var options = ZaichikServerOptions.Default with { MaxKeySize = 65_000 };

        options.Validate().ShouldContain(p => p.Contains("PageSizeBits"));
        (options with { Storage = new() { PageSizeBits = 17, MemorySizeBits = 20 }, MaxFrameSize = 2 * 1024 * 1024 }).Validate().ShouldBeEmpty();
    }

    [Fact]
    public void Validation_refuses_a_frame_limit_smaller_than_the_largest_publish()
    {
        var options = ZaichikServerOptions.Default with { MaxFrameSize = 64 * 1024 };

        options.Validate().ShouldContain(p => p.Contains("MaxFrameSize"));
        (options with { MaxPayloadSize = 44 * 1024 }).Validate().ShouldBeEmpty();
        (options with { MaxPayloadSize = 44 * 1024, MaxHeadersSize = 32 * 1024 }).Validate().ShouldContain(p => p.Contains("MaxFrameSize"), "headers count towards the largest publish");
    }

    [Theory]
    [InlineData("MaxHeadersSize", -1)]
    [InlineData("IdempotenceWindow", 0)]
    [InlineData("IdempotenceWindow", -1)]
    [InlineData("MaxRememberedPublishesPerProducer", 0)]
    [InlineData("MaxProducersPerTopic", 0)]
    public void Validation_names_a_header_or_idempotence_limit_out_of_range(string option, int value)
    {
        var options = option switch
        {
            "MaxHeadersSize" => ZaichikServerOptions.Default with { MaxHeadersSize = value },
            "IdempotenceWindow" => ZaichikServerOptions.Default with { IdempotenceWindow = TimeSpan.FromMinutes(value) },
            "MaxRememberedPublishesPerProducer" => ZaichikServerOptions.Default with { MaxRememberedPublishesPerProducer = value },
            _ => ZaichikServerOptions.Default with { MaxProducersPerTopic = value },
        };

        options.Validate().ShouldContain(problem => problem.StartsWith(option, StringComparison.Ordinal), $"{option} = {value}");
    }

    [Fact]
    public void Header_and_idempotence_limits_have_their_documented_defaults_and_bind_from_configuration()
    {
        var defaults = ZaichikServerOptions.Default;
        defaults.MaxHeadersSize.ShouldBe(16 * 1024);
        defaults.IdempotenceWindow.ShouldBe(TimeSpan.FromMinutes(2));
        defaults.MaxRememberedPublishesPerProducer.ShouldBe(10_000);
        defaults.MaxProducersPerTopic.ShouldBe(1_000);
        defaults.MaxFrameSize.ShouldBe((1024 * 1024) + (32 * 1024));
        defaults.Validate().ShouldBeEmpty();

        var bound = ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build(
            ["--Zaichik:MaxHeadersSize", "100", "--Zaichik:IdempotenceWindow", "00:05:00", "--Zaichik:MaxRememberedPublishesPerProducer", "50", "--Zaichik:MaxProducersPerTopic", "7"],
            new Dictionary<string, string>()));

        bound.MaxHeadersSize.ShouldBe(100);
        bound.IdempotenceWindow.ShouldBe(TimeSpan.FromMinutes(5));
        bound.MaxRememberedPublishesPerProducer.ShouldBe(50);
        bound.MaxProducersPerTopic.ShouldBe(7);
    }

    [Fact]
    public async Task Server_refuses_to_start_with_invalid_options()
    {
        var options = ZaichikServerOptions.Default with { Port = 0, MaxKeySize = 0 };

        await Should.ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () => await ZaichikServer.StartAsync(options));
    }
}
