import FieldbookModel
import GRDB
import SyncCore

/// The one error type of the replica store. It carries the table and row it is about, and
/// wraps model, clock and SQLite errors with that context.
public struct ReplicaError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound
        case alreadyExists
        case invalid
        case clock
        case notAReplica
        case alreadyInitialized
        case immutableField
        case database
        /// The file is encrypted and the passphrase is missing or opens none of its key slots.
        case locked
        /// A page or the key slots do not authenticate: the file was damaged or tampered with.
        case damaged
    }

    public var kind: Kind
    public var message: String
    public var table: String?
    public var id: String?
    /// The model error behind an `.invalid` error.
    public var modelError: ModelError?
    /// SQLite's primary result code behind a `.database` error (5 busy, 6 locked, 13 full, 10 I/O …).
    public var sqliteCode: Int32?

    /// Whether the failure is passing (the database was busy or locked): trying again later may succeed.
    public var isBusy: Bool { sqliteCode == 5 || sqliteCode == 6 }

    public init(_ kind: Kind, _ message: String, table: String? = nil, id: String? = nil, modelError: ModelError? = nil) {
        self.kind = kind
        self.message = message
        self.table = table
        self.id = id
        self.modelError = modelError
    }

    /// A SQLite error, classified: a page that does not authenticate (`SQLITE_IOERR_DATA`) or a
    /// file SQLite cannot read as a database is `.damaged`.
    public static func from(_ e: DatabaseError) -> ReplicaError {
        if e.extendedResultCode.rawValue == EncryptingVFS.SQLITE_IOERR_DATA || e.resultCode == .SQLITE_NOTADB || e.resultCode == .SQLITE_CORRUPT {
            return ReplicaError(.damaged, "the replica is damaged or was tampered with: a page does not authenticate or is not a database page (\(e.message ?? "SQLite \(e.resultCode)"))")
        }
        var r = ReplicaError(.database, "SQLite error \(e.resultCode): \(e.message ?? "")")
        r.sqliteCode = e.resultCode.primaryResultCode.rawValue
        return r
    }

    public static func invalid(_ e: ModelError) -> ReplicaError {
        ReplicaError(.invalid, e.description, modelError: e)
    }

    public static func clock(_ e: SyncCoreError) -> ReplicaError {
        ReplicaError(.clock, e.message)
    }

    public var description: String { message }
}
