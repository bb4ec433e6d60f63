//! The agent's error type.
//!
//! Messages name what went wrong and where, never a key, RES, password or digest
//! value: errors end up in logs and in the CLI's output.

/// Longest server body excerpt kept in [`SecaError::Status`].
pub const STATUS_BODY_EXCERPT: usize = 512;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum SecaError {
    /// The URL is not one the agent can use (scheme, host, port or syntax).
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// Transport failure: connect, send, receive, timeout, oversized response.
    #[error("HTTP transport: {0}")]
    Http(String),
    /// TLS set-up or handshake failure.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered with a status the exchange did not expect.
    #[error("unexpected HTTP status {code}: {body}")]
    Status {
        /// The HTTP status code.
        code: u16,
        /// The start of the response body, printable ASCII only, at most
        /// [`STATUS_BODY_EXCERPT`] bytes.
        body: String,
    },
    /// The card rejected the network's AUTN (MAC failure): the BSF is not genuine or
    /// the challenge was altered. The agent never answers such a challenge.
    #[error("network authentication failed: the card rejected AUTN (MAC failure)")]
    NetworkAuthFailed,
    /// The BSF's `rspauth` is missing or wrong: the 200 OK does not prove that the
    /// server knew XRES, so the bootstrap is not trusted.
    #[error("BSF mutual authentication failed: rspauth missing or wrong")]
    BadRspauth,
    /// The server's message is malformed or does not belong to this exchange.
    #[error("bad response from server: {0}")]
    BadResponse(String),
    /// The card (identity module) failed or refused a command.
    #[error("identity module: {0}")]
    Card(String),
    /// No valid bootstrapping context exists for the requested operation.
    #[error("not bootstrapped: no valid bootstrapping context")]
    NotBootstrapped,
    /// The state directory or a state file could not be used.
    #[error("agent state: {0}")]
    State(String),
    /// The BSF kept asking for resynchronisation (or kept challenging).
    #[error("bootstrapping gave up after repeated challenges or resynchronisations")]
    TooManyResyncs,
    /// A key derivation input was out of range (for example an oversized NAF_Id).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// A gateway did not accept the agent's GBA credentials, also not after a fresh
    /// bootstrap (or no bootstrap was possible): which step refused, never a key.
    #[error("gateway rejected the GBA credentials: {0}")]
    Rejected(String),
    /// A gateway's `Authentication-Info` carried a wrong `rspauth`: the answer does not
    /// prove that the gateway knew the NAF key, so it is not trusted.
    #[error("gateway mutual authentication failed: Authentication-Info rspauth wrong")]
    GatewayRspauth,
    /// The operating system random source failed.
    #[error("operating system random source failed")]
    Random,
}

/// The printable start of a server body, for [`SecaError::Status`]: bytes outside
/// printable ASCII become `.`, so a hostile server cannot inject terminal escapes or
/// newlines into logs.
pub fn body_excerpt(body: &[u8]) -> String {
    body.iter()
        .take(STATUS_BODY_EXCERPT)
        .map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect::<String>()
        .trim_end_matches('.')
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_printable() {
        let mut body = b"forbidden\n\x1b[31mred".to_vec();
        body.extend_from_slice(&[b'x'; 2000]);
        let e = body_excerpt(&body);
        assert!(e.len() <= STATUS_BODY_EXCERPT);
        assert!(e.starts_with("forbidden..[31mred"));
        assert!(e.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
        assert_eq!(body_excerpt(b"not found\n"), "not found");
        assert_eq!(body_excerpt(b""), "");
    }
}
