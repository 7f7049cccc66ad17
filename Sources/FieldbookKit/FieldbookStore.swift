import FieldbookModel
import Foundation
import GRDB
import ReplicaStore

/// The Fieldbook records on a replica: persons, aliases, incidents, charges and sources.
public final class FieldbookStore: Sendable {
    public let replica: Replica

    public var region: String { replica.info.region }

    public init(replica: Replica) { self.replica = replica }

    /// Creates a new replica file for `region`.
    public static func create(path: String, region: String, device: String?, configuration: ReplicaConfiguration = .init(),
                              protection: ReplicaProtection = .none) throws -> FieldbookStore {
        do {
            try Checks.region("region", region)
            return FieldbookStore(replica: try Replica.create(path: path, tables: FieldbookSchema.tables, region: region,
                                                             device: device, configuration: configuration, protection: protection))
        } catch { throw FieldbookError.from(error) }
    }

    /// Opens an existing replica file.
    public static func open(path: String, configuration: ReplicaConfiguration = .init(), passphrase: String? = nil) throws -> FieldbookStore {
        do {
            return FieldbookStore(replica: try Replica.open(path: path, tables: FieldbookSchema.tables, configuration: configuration,
                                                           passphrase: passphrase))
        } catch { throw FieldbookError.from(error) }
    }

    /// Runs `body` in one transaction, mapping errors to `FieldbookError`.
    func write<T>(_ body: (ReplicaWriter) throws -> T) throws -> T {
        do { return try replica.write(body) } catch { throw FieldbookError.from(error) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try replica.read(body) } catch { throw FieldbookError.from(error) }
    }

    /// A new record id.
    static func newID() -> String { UUID().uuidString.lowercased() }

    /// Which table holds the live record `id` (ids are UUIDs, unique across tables).
    public func table(of id: String) throws -> String {
        let norm = id.lowercased()
        return try read { db in
            for t in FieldbookSchema.tables.map(\.name) {
                if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \"\(t)\" WHERE id = ?)", arguments: [norm]) == true { return t }
            }
            throw FieldbookError(.notFound, "no record with id \(id)")
        }
    }

    /// A `--region` filter: nil, or a region name.
    static func checkRegionOption(_ region: String?) throws {
        if let region, !Checks.isRegion(region) {
            throw FieldbookError(.invalidInput, "--region: \"\(region.prefix(80))\" is not a region name (lowercase letters, digits, '-' and '_')")
        }
    }

    /// A value from command-line or CSV text: empty text is null.
    public static func value(_ text: String?) -> Value { .textOrNull(text) }
}
