using System.Collections.Concurrent;

namespace Zaichik.Examples.Worker;

/// <summary>What the consumer processed, shared between it and the code waiting for it.</summary>
public sealed class OrderLedger(string topic, int expected, TextWriter output)
{
    private readonly ConcurrentQueue<OrderPlaced> _processed = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The topic of this run.</summary>
    public string Topic { get; } = topic;

    /// <summary>Completes once <c>expected</c> orders were processed.</summary>
    public Task Done => _done.Task;

    /// <summary>The orders processed so far, in order.</summary>
    public IReadOnlyCollection<OrderPlaced> Processed => _processed;

    /// <summary>Records one processed order.</summary>
    public void Record(OrderPlaced order, long sequence)
    {
        _processed.Enqueue(order);
        output.WriteLine($"Processed order {order.OrderId} ({order.Total:0.00}) from {Topic}@{sequence}");
        if (_processed.Count >= expected)
        {
            _done.TrySetResult();
        }
    }
}
