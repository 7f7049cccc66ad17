import FieldbookModel
import Foundation
import ReplicaStore
import SyncCore

/// Throwaway replicas in a temporary directory, with a clock the test moves by hand.
final class TestReplicas: @unchecked Sendable {
    let dir: URL
    let now = ManualClock()

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func make(_ name: String, tables: [TableSchema] = FieldbookSchema.tables, site: SiteID = .random(),
              synchronous: Replica.Synchronous = .full) throws -> Replica {
        let clock = now
        return try Replica.create(path: dir.appendingPathComponent("\(name).sqlite").path, tables: tables, region: "almaty",
                                  device: name, site: site, configuration: ReplicaConfiguration(clock: { clock.millis }),
                                  synchronous: synchronous)
    }
}

final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64 = 1_700_000_000_000
    var millis: Int64 { lock.withLock { value } }
    func advance(_ ms: Int64) { lock.withLock { value += ms } }
}

/// Three free-text columns: enough for merge schedules.
let plainTable = TableSchema(name: "note", columns: [ColumnSchema("a"), ColumnSchema("b"), ColumnSchema("c")])

extension Replica {
    /// Visible state of a table: id → column → value.
    func state(_ table: String) throws -> [String: [String: Value]] {
        let h = try handle(table)
        return try read { db in
            var out: [String: [String: Value]] = [:]
            let cols = h.schema.columnNames
            for r in try GRDBRow.fetchAll(db, sql: "SELECT id, \(cols.map { "\"\($0)\"" }.joined(separator: ",")) FROM \"\(table)\"") {
                var fields: [String: Value] = [:]
                for (i, c) in cols.enumerated() { fields[c] = Value.fromDatabaseValue(r[i + 1]) ?? .null }
                out[r[0]] = fields
            }
            return out
        }
    }
}

import GRDB
typealias GRDBRow = GRDB.Row
