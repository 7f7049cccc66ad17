/// The one error type of the sync client.
public struct SyncClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server refused the request (4xx); retrying the same will not help.
        case refused
        /// The network or the server failed (connection, timeout, 5xx); retried with backoff.
        case transient
        /// A remote name or URL that is not acceptable, or no such remote.
        case invalidInput
        /// The local replica failed.
        case local
        /// This device waits for a coordinator to approve it (nothing is lost: it records offline
        /// and sends everything once approved).
        case waiting
    }

    public var kind: Kind
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// The server's error code, when it sent one.
    public var code: String?
    /// How long the server asked the client to wait before trying again (`Retry-After`).
    public var retryAfter: Duration?

    public init(_ kind: Kind, _ message: String, status: Int? = nil, code: String? = nil) {
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code
    }

    public var description: String { message }
}
