/// The one error type of the sealing module: a key that is missing or does not fit, a cell that
/// does not open, a file or message that is not what it claims.
public struct SealedSyncError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No key for the region (or for the epoch a cell names) on this device.
        case missingKey
        /// A cell, a wrapped key or a backup failed authentication: altered, moved, or under another key.
        case doesNotOpen
        /// Bytes that are not in the expected form.
        case malformed
        /// A fingerprint that does not match the key it should describe.
        case fingerprintMismatch
        /// A key sent by someone this device does not trust.
        case untrusted
        /// A signed file (a bundle) altered after it was signed.
        case tampered
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
