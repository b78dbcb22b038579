using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Reads a subscription one message at a time, with a deadline on every wait.</summary>
internal sealed class MessageReader : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly IAsyncEnumerator<ZaichikMessage> _messages;
    private Task<bool>? _pending;

    public MessageReader(ZaichikSubscription subscription)
    {
        Subscription = subscription;
        _messages = subscription.GetAsyncEnumerator();
    }

    public ZaichikSubscription Subscription { get; }

    /// <summary>The next message; fails if none arrives within 10 s.</summary>
    public async Task<ZaichikMessage> NextAsync()
    {
        _pending ??= _messages.MoveNextAsync().AsTask();
        var moved = await _pending.WaitAsync(Deadline);
        _pending = null;
        moved.ShouldBeTrue("the subscription ended instead of delivering a message");
        return _messages.Current;
    }

    public async Task<List<ZaichikMessage>> NextAsync(int count)
    {
        var messages = new List<ZaichikMessage>(count);
        for (var i = 0; i < count; i++)
        {
            messages.Add(await NextAsync());
        }

        return messages;
    }

    /// <summary>
    /// Asserts that nothing is delivered during <paramref name="window"/>. Only for proving that flow control
    /// holds a message back; a positive step after it shows the message then does arrive.
    /// </summary>
    public async Task ShouldReceiveNothingWithinAsync(TimeSpan window)
    {
        _pending ??= _messages.MoveNextAsync().AsTask();
        var finished = await Task.WhenAny(_pending, Task.Delay(window));
        if (finished == _pending)
        {
            var moved = await _pending;
            _pending = null;
            moved.ShouldBeFalse($"expected no delivery, but received {_messages.Current} ('{_messages.Current.PayloadText}')");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Subscription.DisposeAsync();
        if (_pending is not null)
        {
            await Task.WhenAny(_pending, Task.Delay(Deadline));
        }

        await _messages.DisposeAsync();
    }
}
