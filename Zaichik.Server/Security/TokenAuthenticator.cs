using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Security;

/// <summary>
/// Checks the token of a Hello against the configured ones. Only SHA-256 digests of the secrets are kept, and an
/// offered token is compared with every one of them in constant time, so neither the time taken nor an early exit
/// tells an attacker how much of a guess was right or which token was close.
/// </summary>
internal sealed class TokenAuthenticator
{
    private readonly (byte[] Digest, TokenGrant Grant)[] _tokens;

    public TokenAuthenticator(IOptions<ZaichikServerOptions> options)
    {
        _tokens = options.Value.Tokens
            .Select(token => (Digest(token.Token), new TokenGrant(token.Name, Parse(token.Publish), Parse(token.Subscribe), token.Admin)))
            .ToArray();
    }

    /// <summary>False when any client may connect without a token.</summary>
    public bool Required => _tokens.Length > 0;

    /// <summary>The grant for <paramref name="token"/>, or null when authentication is required and the token is missing or unknown.</summary>
    public TokenGrant? Authenticate(string? token)
    {
        if (!Required)
        {
            return TokenGrant.Everything;
        }

        if (token is null)
        {
            return null;
        }

        var offered = Digest(token);
        TokenGrant? match = null;
        foreach (var (digest, grant) in _tokens)
        {
            // No early exit: every configured token is compared whatever the outcome.
            if (CryptographicOperations.FixedTimeEquals(offered, digest))
            {
                match ??= grant;
            }
        }

        return match;
    }

    /// <summary>Every problem with the configured tokens; empty when they are valid.</summary>
    public static IEnumerable<string> Validate(IReadOnlyList<ZaichikTokenOptions> tokens)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var digests = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var label = string.IsNullOrWhiteSpace(token.Name) ? $"Tokens:{i}" : $"token '{token.Name}'";
            if (string.IsNullOrWhiteSpace(token.Name))
            {
                yield return $"Tokens:{i} has no Name";
            }
            else if (!names.Add(token.Name))
            {
                yield return $"{label} is configured twice";
            }

            if (token.Token is null || token.Token.Length < ZaichikTokenOptions.MinimumTokenLength)
            {
                yield return $"{label}: the secret must be at least {ZaichikTokenOptions.MinimumTokenLength} characters";
            }
            else if (!digests.Add(Convert.ToHexString(Digest(token.Token))))
            {
                yield return $"{label} has the same secret as another token";
            }

            foreach (var text in (token.Publish ?? []).Concat(token.Subscribe ?? []))
            {
                if (TopicPattern.TryParse(text, out var problem) is null)
                {
                    yield return $"{label}: {problem}";
                }
            }
        }
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static TopicPattern[] Parse(IReadOnlyList<string>? patterns) =>
        (patterns ?? []).Select(text => TopicPattern.TryParse(text, out _)!).ToArray();
}
