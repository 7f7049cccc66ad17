import FieldbookModel
import GRDB
import ReplicaStore

/// The one error type of the domain layer. The CLI maps `kind` to exit codes.
public struct FieldbookError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Input that is not acceptable (a field value, a CSV row, an option).
        case invalidInput
        /// No record with that id.
        case notFound
        /// The replica does not exist or cannot be opened, or already exists.
        case replica
        /// Anything else (I/O, SQLite).
        case failure
        /// The replica is encrypted and the passphrase is missing or wrong.
        case locked
        /// The replica's pages or key slots do not authenticate: damaged or tampered with.
        case damaged
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Maps model and replica errors to the domain's kinds.
    public static func from(_ error: any Error) -> FieldbookError {
        switch error {
        case let e as FieldbookError: return e
        case let e as ModelError: return FieldbookError(.invalidInput, e.description)
        case let e as ReplicaError:
            switch e.kind {
            case .invalid, .immutableField, .alreadyExists, .clock: return FieldbookError(.invalidInput, e.message)
            case .notFound: return FieldbookError(.notFound, e.message)
            case .notAReplica, .alreadyInitialized: return FieldbookError(.replica, e.message)
            case .database: return FieldbookError(.failure, e.message)
            case .locked: return FieldbookError(.locked, e.message)
            case .damaged: return FieldbookError(.damaged, e.message)
            }
        case let e as DatabaseError: return from(ReplicaError.from(e))
        default: return FieldbookError(.failure, "\(error)")
        }
    }
}
