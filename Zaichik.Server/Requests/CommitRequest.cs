using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Security;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>Commit: moves a subscription's window and, for a durable consumer, its stored position.</summary>
internal sealed partial class ConnectionRequests
{
    public void Commit(CommitFrame commit)
    {
        if (commit.Topic is null)
        {
            foreach (var subscription in _subscriptions.Values)
            {
                subscription.CommitAll();
            }

            return;
        }

        if (_subscriptions.TryGetValue(commit.Topic, out var target))
        {
            target.CommitUpTo(commit.Sequence);
        }
        else
        {
            Reply(new ErrorFrame(null, ErrorCode.NotSubscribed, $"Commit names '{commit.Topic}', which this connection does not subscribe to"));
        }
    }
}
