using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Zaichik.Server.Cluster;
using Zaichik.Server.State;

namespace Zaichik.Server.Admin;

/// <summary>
/// Every type the admin API writes or reads, serialized by generated code (camelCase, enums by name), so that the
/// API needs no reflection and a native-compiled broker serves it too. A type missing here fails its endpoint's tests.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true, WriteIndented = false)]
[JsonSerializable(typeof(ServerView))]
[JsonSerializable(typeof(IReadOnlyList<TopicView>))]
[JsonSerializable(typeof(TopicView))]
[JsonSerializable(typeof(PeekView))]
[JsonSerializable(typeof(IReadOnlyList<ConnectionView>))]
[JsonSerializable(typeof(IReadOnlyList<ConsumerView>))]
[JsonSerializable(typeof(IReadOnlyList<GroupView>))]
[JsonSerializable(typeof(IReadOnlyList<HoleView>))]
[JsonSerializable(typeof(ClusterView))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(AdminEndpoints.ProblemBody))]
[JsonSerializable(typeof(AdminEndpoints.StepDownResult))]
[JsonSerializable(typeof(AdminEndpoints.CreateTopicRequest))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;

/// <summary>
/// The broker's settings as <c>GET /api/server</c> shows them: named as in configuration (<c>MaxFrameSize</c>,
/// <c>Storage.PageSizeBits</c>), so what is shown can be set; secrets (token values, certificate passwords) are
/// marked <see cref="JsonIgnoreAttribute"/> on the options and never written.
/// </summary>
[JsonSourceGenerationOptions(UseStringEnumConverter = true)]
[JsonSerializable(typeof(Hosting.ZaichikServerOptions))]
internal sealed partial class ConfigurationJsonContext : JsonSerializerContext;
