import FieldbookModel
import Foundation
import GRDB
import SyncCore

/// The write side of one transaction. Local writes stamp each change with the next HLC of this
/// replica and log it; `apply` merges a remote changeset. Valid only inside `Replica.write`.
public final class ReplicaWriter {
    public let db: Database
    let replica: Replica
    var clock: HybridLogicalClock
    let startClock: HLC
    /// Local site index ↔ site id.
    var siteIDs: [Int32: SiteID] = [:]
    var siteIndex: [SiteID: Int32] = [:]
    /// The site index this replica's own writes are stamped with (1 unless `takeNewSite()` moved it).
    var localSite: Int32 = 1
    var nextSeq: Int64
    /// Log entries not yet written (see `ChangeLog`).
    var pending: [UInt8] = []
    var pendingCount = 0
    var hasTombstones: Bool
    var now: Int64
    /// The origin recorded with log entries (0 = local writes; set while applying a remote changeset).
    var origin: Int64 = 0
    let context: ConnectionContext
    var capture: ClockCapture { context.capture }

    struct StatementKey: Hashable {
        var table: Int64
        var kind: Int
        var mask: Int64
    }
    /// A statement prepared once per connection, by key.
    func statement(_ key: StatementKey, _ sql: @autoclosure () -> String) throws -> RawStatement {
        try context.statement(db, key, sql())
    }

    enum Op: Int64 {
        case insert = 1, update = 2, delete = 3, remote = 4
    }

    let dataVersion: Int64

    init(db: Database, replica: Replica) throws {
        self.db = db
        self.replica = replica
        self.context = replica.context
        dataVersion = try context.dataVersion(db)
        let cached = context.snapshot
        context.snapshot = nil  // set again only after this transaction commits
        if let c = cached, c.dataVersion == dataVersion {
            clock = HybridLogicalClock(last: HLC(rawValue: c.clock), maxDriftMillis: replica.configuration.maxDriftMillis)
            siteIDs = c.siteIDs
            siteIndex = c.siteIndex
            localSite = c.localSite
            nextSeq = c.nextSeq
            hasTombstones = c.hasTombstones
        } else {
            let last = try Int64.fetchOne(db.cachedStatement(sql: "SELECT hlc FROM _fb_replica WHERE id = 1")) ?? 0
            clock = HybridLogicalClock(last: HLC(rawValue: last), maxDriftMillis: replica.configuration.maxDriftMillis)
            for r in try Row.fetchAll(db.cachedStatement(sql: "SELECT idx, site FROM _fb_site")) {
                let idx: Int32 = r["idx"]
                if let s = SiteID(bytes: [UInt8](r["site"] as Data)) {
                    siteIDs[idx] = s
                    siteIndex[s] = idx
                }
            }
            localSite = try Int32.fetchOne(db.cachedStatement(
                sql: "SELECT s.idx FROM _fb_site s JOIN _fb_replica r ON r.id = 1 AND s.site = r.site")) ?? 1
            nextSeq = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(seq) FROM _fb_log")) ?? 0) + 1
            hasTombstones = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM _fb_tombstone)")) ?? false
        }
        startClock = clock.last
        now = replica.configuration.clock()
    }

    /// The state to start the next transaction from (kept once this one has committed).
    var snapshot: WriterSnapshot {
        WriterSnapshot(dataVersion: dataVersion, clock: clock.last.rawValue, siteIDs: siteIDs, siteIndex: siteIndex,
                       localSite: localSite, nextSeq: nextSeq, hasTombstones: hasTombstones)
    }

    func finish() throws {
        try flushLog()
        if clock.last != startClock {
            let s = try statement(StatementKey(table: -3, kind: 0, mask: 0), "UPDATE _fb_replica SET hlc = ? WHERE id = 1")
            s.bind(1, clock.last.rawValue)
            try s.run()
        }
    }

    func tick() throws -> Int64 {
        do { return try clock.tick(physicalMillis: now).rawValue } catch { throw ReplicaError.clock(error) }
    }

    func log(_ h: TableHandle, id: String, op: Op, cl: Int64, hlc: Int64, site: Int32, fields: Int64, payload: [UInt8]?) throws {
        ChangeLog.append(LogEntry(table: h.index, rowID: id, op: op.rawValue, cl: cl, hlc: hlc, site: site, fields: fields,
                                  payload: payload ?? [], origin: op == .remote ? origin : 0), to: &pending)
        pendingCount += 1
        if pendingCount >= ChangeLog.chunkSize { try flushLog() }
    }

    /// Writes the buffered log entries as one chunk.
    func flushLog() throws {
        guard pendingCount > 0 else { return }
        let s = try statement(StatementKey(table: -1, kind: 0, mask: 0), "INSERT INTO _fb_log (seq, entries, body) VALUES (?,?,?)")
        s.bind(1, nextSeq)
        s.bind(2, Int64(pendingCount))
        s.bind(3, pending)
        try s.run()
        nextSeq += 1
        pending.removeAll(keepingCapacity: true)
        pendingCount = 0
    }

    func validate(_ h: TableHandle, _ value: Value, at i: Int) throws {
        if !h.checked[i] {
            switch value {
            case .text, .null: return  // an unchecked text column takes any text
            default: break
            }
        }
        do { try h.schema.validate(value, at: i) } catch { throw ReplicaError.invalid(error) }
    }

    func tombstone(_ h: TableHandle, _ id: String) throws -> Int64? {
        guard hasTombstones else { return nil }
        return try Int64.fetchOne(db.cachedStatement(sql: "SELECT cl FROM _fb_tombstone WHERE tbl = ? AND row_id = ?"),
                                  arguments: [h.index, id])
    }

    // MARK: Local writes

    /// Inserts a row with values in column order (`values.count` must equal the column count).
    /// Inserting the id of a deleted row re-creates it (its causal length moves to the next odd number).
    public func insert(_ h: TableHandle, id: String, values: [Value]) throws {
        precondition(values.count == h.columnCount)
        for i in values.indices { try validate(h, values[i], at: i) }
        do { try h.schema.checkRow(values) } catch { throw ReplicaError.invalid(error) }
        let hlc = try tick()
        var cl: Int64 = 1
        if let dead = try tombstone(h, id) {
            cl = Resolver.clAfterCreate(dead + 1)
            try db.execute(sql: "DELETE FROM _fb_tombstone WHERE tbl = ? AND row_id = ?", arguments: [h.index, id])
        }
        let clocks = ClockVector.uniform(hlc: hlc, site: localSite)
        let s = try statement(StatementKey(table: h.index, kind: 1, mask: 0), h.insertSQL)
        s.bind(1, id)
        for (i, v) in values.enumerated() { s.bind(Int32(i + 2), v) }
        s.bind(Int32(values.count + 2), cl)
        s.bind(Int32(values.count + 3), clocks)
        do {
            try s.run()
        } catch let e as DatabaseError where e.resultCode.primaryResultCode == .SQLITE_CONSTRAINT {
            throw ReplicaError(.alreadyExists, "\(h.schema.name) \(id) already exists", table: h.schema.name, id: id)
        }
        try log(h, id: id, op: .insert, cl: cl, hlc: hlc, site: localSite, fields: (1 << Int64(h.columnCount)) - 1, payload: nil)
    }

    /// Inserts a row by field name; fields not named are null.
    public func insert(_ table: String, id: String, values: [String: Value]) throws {
        let h = try replica.handle(table)
        var row = Array(repeating: Value.null, count: h.columnCount)
        for (k, v) in values {
            do { row[try h.schema.index(of: k)] = v } catch { throw ReplicaError.invalid(error) }
        }
        try insert(h, id: id, values: row)
    }

    /// Sets one column of a live row (the hot path: no arrays).
    public func update(_ h: TableHandle, id: String, column c: Int, value v: Value) throws {
        if h.immutableColumns.contains(c) {
            throw ReplicaError(.immutableField, "\(h.schema.name).\(h.schema.columns[c].name) cannot change after the record is created",
                               table: h.schema.name, id: id)
        }
        try validate(h, v, at: c)
        let mask: Int64 = 1 << c
        let hlc = try tick()
        let s = try context.columnUpdate(db, h, column: c, site: localSite)
        s.bind(1, v)
        s.bind(2, hlc)
        s.bind(3, id)
        guard try s.run() == 1 else {
            throw ReplicaError(.notFound, "no \(h.schema.name) with id \(id)", table: h.schema.name, id: id)
        }
        try log(h, id: id, op: .update, cl: capture.cl, hlc: hlc, site: localSite, fields: mask, payload: capture.payload)
    }

    /// Sets columns of a live row (`changes`: column index → value).
    public func update(_ h: TableHandle, id: String, changes: [(column: Int, value: Value)]) throws {
        guard !changes.isEmpty else { return }
        if changes.count == 1 { return try update(h, id: id, column: changes[0].column, value: changes[0].value) }
        var mask: Int64 = 0
        var args: [Value] = []
        for (c, v) in (changes.count == 1 ? changes : changes.sorted(by: { $0.column < $1.column })) {
            if h.immutableColumns.contains(c) {
                throw ReplicaError(.immutableField, "\(h.schema.name).\(h.schema.columns[c].name) cannot change after the record is created",
                                   table: h.schema.name, id: id)
            }
            try validate(h, v, at: c)
            if mask & (1 << c) != 0 { continue }
            mask |= 1 << c
            args.append(v)
        }
        let hlc = try tick()
        let s = try statement(StatementKey(table: h.index, kind: 2, mask: mask), h.localUpdateSQL(mask: mask, site: localSite))
        var i: Int32 = 1
        for v in args { s.bind(i, v); i += 1 }
        s.bind(i, hlc)
        s.bind(i + 1, id)
        guard try s.run() == 1 else {
            throw ReplicaError(.notFound, "no \(h.schema.name) with id \(id)", table: h.schema.name, id: id)
        }
        // The log keeps the overwritten values with their clocks (history), as fb_setclock saw them.
        try log(h, id: id, op: .update, cl: capture.cl, hlc: hlc, site: localSite, fields: mask, payload: capture.payload)
    }

    /// Sets fields of a live row by name.
    public func update(_ table: String, id: String, values: [String: Value]) throws {
        let h = try replica.handle(table)
        var changes: [(column: Int, value: Value)] = []
        for (k, v) in values {
            do { changes.append((try h.schema.index(of: k), v)) } catch { throw ReplicaError.invalid(error) }
        }
        try update(h, id: id, changes: changes)
    }

    /// Deletes a live row: it disappears from its table and a tombstone keeps its causal length.
    public func delete(_ table: String, id: String) throws {
        let h = try replica.handle(table)
        guard let (cl, payload, part) = try currentRow(h, id) else {
            throw ReplicaError(.notFound, "no \(table) with id \(id)", table: table, id: id)
        }
        let hlc = try tick()
        let dead = Resolver.clAfterDelete(cl)
        try db.execute(sql: "DELETE FROM \(h.quoted) WHERE id = ?", arguments: [id])
        var values = [Value?](repeating: nil, count: h.columnCount)
        for e in ValueCodec.decode(Data(payload)) where e.column < values.count { values[e.column] = e.value }
        if let pc = h.partitionColumn, values[pc] == nil, let part { values[pc] = .text(part) }
        try writeTombstone(h, id, cl: dead, hlc: hlc, site: localSite, values: values)
        try log(h, id: id, op: .delete, cl: dead, hlc: hlc, site: localSite, fields: 0, payload: payload)
    }

    /// The live row's causal length, its values with their clocks encoded for the log, and its partition.
    func currentRow(_ h: TableHandle, _ id: String) throws -> (Int64, [UInt8], String?)? {
        let n = h.columnCount
        let s = try statement(StatementKey(table: h.index, kind: 5, mask: 0), h.rowSQL)
        s.bind(1, id)
        guard try s.next() else { return nil }
        defer { s.reset() }
        let clocks = ClockVector(data: s.data(Int32(n + 1)), count: n + 1)
        var payload: [UInt8] = []
        for c in 0..<n {
            ValueCodec.append(.init(column: c, value: s.value(Int32(c)), clock: (clocks.hlc[c + 1], clocks.site[c + 1])), to: &payload)
        }
        return (s.int64(Int32(n)), payload, h.partitionColumn.flatMap { s.value(Int32($0)).text })
    }

    // MARK: Reads inside the transaction

    /// The live row's values by field name, or nil.
    public func values(_ table: String, id: String) throws -> [String: Value]? {
        let h = try replica.handle(table)
        guard let row = try Row.fetchOne(db.cachedStatement(sql: h.rowSQL), arguments: [id]) else { return nil }
        var out: [String: Value] = [:]
        for (i, c) in h.schema.columns.enumerated() { out[c.name] = Value.fromDatabaseValue(row[i]) ?? .null }
        return out
    }
}
