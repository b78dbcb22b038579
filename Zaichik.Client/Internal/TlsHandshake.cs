using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Zaichik.Client.Internal;

/// <summary>
/// The client side of the TLS handshake for one connection. It checks the server's certificate and remembers why
/// it refused one, because SslStream itself only reports that the validation callback said no.
/// </summary>
internal sealed class TlsHandshake
{
    private readonly ZaichikTlsOptions _options;
    private readonly string _endpoint;
    private readonly string _targetHost;
    private string? _refusal;
    private bool _certificateSeen;

    private TlsHandshake(ZaichikTlsOptions options, string host, int port)
    {
        _options = options;
        _endpoint = $"{host}:{port}";
        _targetHost = options.TargetHost ?? host;
    }

    /// <summary>
    /// Wraps <paramref name="transport"/> in TLS and authenticates the server. On failure the transport is disposed
    /// and a <see cref="ZaichikConnectionException"/> says why; <paramref name="deadline"/> bounds the handshake.
    /// </summary>
    public static async ValueTask<SslStream> AuthenticateAsync(
        Stream transport,
        ZaichikTlsOptions options,
        string host,
        int port,
        TimeSpan connectTimeout,
        CancellationToken deadline,
        CancellationToken cancellationToken)
    {
        var handshake = new TlsHandshake(options, host, port);
        var stream = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await stream.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = handshake._targetHost,
                    RemoteCertificateValidationCallback = handshake.Validate,
                    // None lets the OS choose: TLS 1.2 and 1.3, never the deprecated versions.
                    EnabledSslProtocols = SslProtocols.None,
                },
                deadline).ConfigureAwait(false);
            return stream;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw handshake.Failure($"no answer to the TLS handshake within {connectTimeout.TotalSeconds:0.###} s", null);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw handshake.Failure(handshake.Reason(e), e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        _certificateSeen = true;
        if (_options.RemoteCertificateValidation is { } custom)
        {
            var accepted = custom(sender, certificate, chain, errors);
            _refusal = accepted ? null : $"the server certificate was rejected by Tls.RemoteCertificateValidation ({errors})";
            return accepted;
        }

        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        // Equal bytes means the server holds this very certificate's key: name and chain add nothing to that.
        if (_options.TrustedCertificate is { } trusted && certificate is not null
            && certificate.GetRawCertData().AsSpan().SequenceEqual(trusted.RawDataMemory.Span))
        {
            return true;
        }

        _refusal = $"the server certificate was not trusted: {Describe(errors, chain, _targetHost)}"
            + (_options.TrustedCertificate is null ? "" : "; it is not Tls.TrustedCertificate either");
        return false;
    }

    private string Reason(Exception failure)
    {
        if (_refusal is not null)
        {
            return _refusal;
        }

        // Nothing that looked like a certificate came back: most likely the server does not speak TLS on this port.
        return _certificateSeen
            ? failure.Message
            : $"{failure.Message} (the server may not have TLS enabled)";
    }

    private ZaichikConnectionException Failure(string reason, Exception? cause) =>
        new($"could not connect to Zaichik at {_endpoint}: TLS failed: {reason}", cause);

    private static string Describe(SslPolicyErrors errors, X509Chain? chain, string targetHost)
    {
        var details = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            details.Add($"it does not name '{targetHost}'");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors) && chain is not null)
        {
            details.AddRange(chain.ChainStatus
                .Where(status => status.Status != X509ChainStatusFlags.NoError)
                .Select(status => $"{status.Status}: {status.StatusInformation.Trim()}")
                .Distinct());
        }

        return details.Count > 0 ? $"{errors} ({string.Join("; ", details)})" : errors.ToString();
    }
}
