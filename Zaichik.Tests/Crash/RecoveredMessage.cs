namespace Zaichik.Tests.Crash;

/// <summary>One message as read back from the restarted server, in delivery order.</summary>
internal readonly record struct RecoveredMessage(long BrokerSequence, string Payload);
