/// The one error type of the sync core.
public struct SyncCoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A remote timestamp lies further ahead of local physical time than the allowed drift.
        case clockDrift
        /// The clock cannot advance (its millisecond part would overflow).
        case clockExhausted
        /// A change the merge refuses (it would change what never changes).
        case refused
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
