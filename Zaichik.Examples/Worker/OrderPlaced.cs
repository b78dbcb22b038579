namespace Zaichik.Examples.Worker;

/// <summary>The example's message, published and consumed as JSON.</summary>
public sealed record OrderPlaced(string OrderId, decimal Total);
