import FieldbookModel
import Foundation
import GRDB
import SyncCore

extension ReplicaWriter {
    /// The id under which changes received from `site` are recorded as their origin.
    public func originID(for site: SiteID) throws -> Int64 { Int64(try localIndex(of: site)) }

    /// The local site index of `site`, registering it when new.
    func localIndex(of site: SiteID) throws -> Int32 {
        if let i = siteIndex[site] { return i }
        try db.execute(sql: "INSERT INTO _fb_site (site) VALUES (?)", arguments: [Data(site.bytes)])
        let i = Int32(db.lastInsertedRowID)
        siteIndex[site] = i
        siteIDs[i] = site
        return i
    }

    func receive(_ hlc: Int64) throws {
        do { _ = try clock.receive(HLC(rawValue: hlc), physicalMillis: now) } catch { throw ReplicaError.clock(error) }
    }

    /// Merges a changeset from another replica (see `Resolver` for the rules). `origin` is
    /// recorded with the changes it makes (see `Replica.changes(since:limit:excludingOrigin:)`).
    ///
    /// - Parameter setAside: when given, a row change the model refuses (`.invalid`,
    ///   `.immutableField`) is handed to it and the rest goes on; without it, the refusal throws.
    ///   A refused row change has written nothing of its row (every check runs before the first write).
    public func apply(_ cs: Changeset, origin: Int64 = 0,
                      setAside: ((_ table: String, _ row: RowChange, _ error: ReplicaError) throws -> Void)? = nil) throws -> ApplyReport {
        self.origin = origin
        defer { self.origin = 0 }
        // Only the sites some change refers to are registered (`Changeset.usedSites`).
        let used = cs.usedSites
        var sites = [Int32](repeating: 0, count: cs.sites.count)
        for (i, s) in cs.sites.enumerated() where used[i] { sites[i] = try localIndex(of: s) }
        for (i, idx) in sites.enumerated() where used[i] && idx != localSite {
            if let name = cs.name(ofSite: i) {
                do { try WireLimits.checkDeviceName(name, field: "names[\(i)]") } catch { throw ReplicaError.invalid(error) }
                let s = try statement(StatementKey(table: -5, kind: 0, mask: 0), "UPDATE _fb_site SET name = ? WHERE idx = ? AND name IS NULL")
                s.bind(1, name)
                s.bind(2, Int64(idx))
                try s.run()
            }
        }
        var report = ApplyReport()
        for t in cs.tables {
            let h = try replica.handle(t.table)
            var columns: [Int] = []
            for name in t.fields {
                do { columns.append(try h.schema.index(of: name)) } catch { throw ReplicaError.invalid(error) }
            }
            for rc in t.rows {
                guard let setAside else {
                    report = report + (try apply(rc, h, columns: columns, sites: sites, siteIDs: cs.sites))
                    continue
                }
                do {
                    report = report + (try apply(rc, h, columns: columns, sites: sites, siteIDs: cs.sites))
                } catch let e as ReplicaError where e.kind == .invalid || e.kind == .immutableField {
                    try setAside(t.table, rc, e)
                    report.setAside += 1
                }
            }
        }
        return report
    }

    /// Writes the columns of `mask` (one statement for every mask), the causal length and the clocks.
    private func updateRow(_ h: TableHandle, id: String, mask: Int64, values: [Value?], cl: Int64, clocks: ClockVector) throws {
        let n = h.columnCount
        let up = try statement(StatementKey(table: h.index, kind: 4, mask: 0), h.updateAnySQL)
        up.bind(1, mask)
        for c in 0..<n where mask & (1 << c) != 0 { up.bind(Int32(c + 2), values[c] ?? .null) }
        up.bind(Int32(n + 2), cl)
        up.bind(Int32(n + 3), clocks.bytes)
        up.bind(Int32(n + 4), id)
        try up.run()
    }

    /// Inserts `rc` (a live row with every field) unless the table already holds its id or a
    /// tombstone does; returns whether it did. What it writes is what the merge below decides for
    /// a row this replica does not have: every field wins, the row takes the incoming causal length.
    private func insertIfNew(_ rc: RowChange, _ h: TableHandle, columns: [Int], sites: [Int32]) throws -> Bool {
        if try tombstone(h, rc.id) != nil { return false }
        let n = h.columnCount
        var clocks = ClockVector(count: n + 1)
        clocks.hlc[0] = rc.hlc
        clocks.site[0] = sites[rc.site]
        let ins = try statement(StatementKey(table: h.index, kind: 6, mask: 0), h.insertIfNewSQL)
        ins.bind(1, rc.id)
        var seen: Int64 = 0
        for f in rc.fields {
            let c = columns[f.field]
            seen |= 1 << c
            ins.bind(Int32(c + 2), f.value)
            clocks.hlc[c + 1] = f.hlc
            clocks.site[c + 1] = sites[f.site]
        }
        let all: Int64 = (1 << Int64(n)) - 1
        guard seen == all else {  // a field named twice: leave it to the merge
            ins.reset()
            return false
        }
        var full = [Value](repeating: .null, count: n)
        for f in rc.fields { full[columns[f.field]] = f.value }
        do { try checkWholeRow(rc, h, full) } catch {
            ins.reset()
            throw error
        }
        ins.bind(Int32(n + 2), rc.cl)
        ins.bind(Int32(n + 3), clocks.bytes)
        guard try ins.run() == 1 else { return false }
        try log(h, id: rc.id, op: .remote, cl: rc.cl, hlc: rc.hlc, site: sites[rc.site], fields: all, payload: nil)
        return true
    }

    private func apply(_ rc: RowChange, _ h: TableHandle, columns: [Int], sites: [Int32], siteIDs remote: [SiteID]) throws -> ApplyReport {
        let n = h.columnCount
        do { try h.schema.validateID(rc.id) } catch {
            throw ReplicaError(.invalid, "\(error)", table: h.schema.name, id: rc.id, modelError: error)
        }
        for f in rc.fields {
            do { try h.schema.validate(f.value, at: columns[f.field]) } catch {
                throw ReplicaError(.invalid, "\(error) (row \(rc.id))", table: h.schema.name, id: rc.id, modelError: error)
            }
        }
        try receive(rc.hlc)
        for f in rc.fields { try receive(f.hlc) }
        // The plan for a row never seen, carried out without reading first: a row that carries
        // every field is usually one this replica does not have (a first sync). If it has it
        // after all, it is planned as usual below.
        if rc.fields.count == n, rc.cl % 2 == 1, try insertIfNew(rc, h, columns: columns, sites: sites) {
            return ApplyReport(applied: rc.fields.count)
        }

        // Local state: a live row, a tombstone, or nothing.
        var local: RowMerge.Local? = nil
        var clocks = ClockVector(count: n + 1)
        var old = [Value?](repeating: nil, count: n)
        func version(_ hlc: Int64, _ site: Int32, fallback: Int) -> FieldVersion {
            FieldVersion(hlc: HLC(rawValue: hlc), site: siteIDs[site] ?? remote[fallback])
        }
        let state = try statement(StatementKey(table: h.index, kind: 5, mask: 0), h.rowSQL)
        state.bind(1, rc.id)
        if try state.next() {
            defer { state.reset() }
            let cl = state.int64(Int32(n))
            clocks = ClockVector(data: state.data(Int32(n + 1)), count: n + 1)
            // Only the columns this change may overwrite (history) or must not change (immutable);
            // every column when it may start a new incarnation.
            let adopting = rc.cl > cl
            for f in rc.fields { old[columns[f.field]] = state.value(Int32(columns[f.field])) }
            if adopting { for c in 0..<n where old[c] == nil { old[c] = state.value(Int32(c)) } }
            for c in h.immutableColumns where old[c] == nil { old[c] = state.value(Int32(c)) }
            var versions: [Int: FieldVersion] = [:]
            for f in rc.fields where clocks.hlc[columns[f.field] + 1] != 0 {
                let c = columns[f.field]
                versions[c] = version(clocks.hlc[c + 1], clocks.site[c + 1], fallback: f.site)
            }
            var fixed: [Int: Value] = [:]
            for c in h.immutableColumns { fixed[c] = old[c] ?? .null }
            local = RowMerge.Local(cl: cl, existence: version(clocks.hlc[0], clocks.site[0], fallback: rc.site), versions: versions, fixed: fixed)
        } else if let dead = try tombstoneRow(h, rc.id) {
            clocks.hlc[0] = dead.hlc
            clocks.site[0] = dead.site
            // What never changes is remembered by the tombstone, so a re-creation cannot move the record.
            var fixed: [Int: Value] = [:]
            for e in dead.fixed where e.column < n {
                fixed[e.column] = e.value
                if old[e.column] == nil { old[e.column] = e.value }
            }
            local = RowMerge.Local(cl: dead.cl, existence: version(dead.hlc, dead.site, fallback: rc.site), versions: [:], fixed: fixed)
        }

        let incoming = RowMerge.Incoming(
            cl: rc.cl, existence: FieldVersion(hlc: HLC(rawValue: rc.hlc), site: remote[rc.site]),
            fields: rc.fields.map { RowMerge.Field(column: columns[$0.field], value: $0.value, version: FieldVersion(hlc: HLC(rawValue: $0.hlc), site: remote[$0.site])) })
        let plan: RowMerge.Plan
        do { plan = try RowMerge.plan(incoming, local: local, immutable: h.immutableColumns) } catch {
            throw refusal(error, h, rc.id)
        }
        try carryOut(plan, rc, h, old: old, oldClocks: clocks)
        return ApplyReport(applied: plan.applied, ignored: plan.ignored)
    }

    private func refusal(_ r: RowMerge.Refusal, _ h: TableHandle, _ id: String) -> ReplicaError {
        switch r {
        case let .immutableMissing(c):
            ReplicaError(.invalid, "\(h.schema.name).\(h.schema.columns[c].name) of \(id) is required when the record is created",
                         table: h.schema.name, id: id)
        case let .immutableChanged(c, held, incoming):
            ReplicaError(.immutableField,
                         "\(h.schema.name).\(h.schema.columns[c].name) of \(id) cannot change from \"\(held.display)\" to \"\(incoming.display)\"",
                         table: h.schema.name, id: id)
        }
    }

    /// Carries out a merge plan on the stored row: table row, tombstone, log (with the
    /// overwritten values for history) and the writes that lost.
    private func carryOut(_ plan: RowMerge.Plan, _ rc: RowChange, _ h: TableHandle, old: [Value?], oldClocks: ClockVector) throws {
        let n = h.columnCount
        let all: Int64 = (1 << Int64(n)) - 1
        let site = try localIndex(of: plan.existence.site)
        /// The overwritten values of the columns in `m`, with their clocks (history).
        func superseded(_ m: Int64) -> [UInt8] {
            var out: [UInt8] = []
            for c in 0..<n where m & (1 << c) != 0 {
                ValueCodec.append(.init(column: c, value: old[c] ?? .null, clock: (oldClocks.hlc[c + 1], oldClocks.site[c + 1])), to: &out)
            }
            return out
        }
        var values = [Value?](repeating: nil, count: n)
        var clocks = oldClocks
        var mask: Int64 = 0
        if plan.storage == .create {
            clocks = ClockVector(count: n + 1)
            clocks.hlc[0] = plan.existence.hlc.rawValue
            clocks.site[0] = site
        }
        for f in plan.taken {
            values[f.column] = f.value
            mask |= 1 << f.column
            clocks.hlc[f.column + 1] = f.version.hlc.rawValue
            clocks.site[f.column + 1] = try localIndex(of: f.version.site)
        }

        switch plan.storage {
        case .nothing:
            break
        case .delete:
            // The row leaves its table; the tombstone keeps the causal length, the region and what never changes.
            if plan.wasAlive { try db.execute(sql: "DELETE FROM \(h.quoted) WHERE id = ?", arguments: [rc.id]) }
            try writeTombstone(h, rc.id, cl: plan.cl, hlc: plan.existence.hlc.rawValue, site: site, values: old)
            try log(h, id: rc.id, op: .remote, cl: plan.cl, hlc: rc.hlc, site: site, fields: 0, payload: superseded(plan.superseded(columns: n)))
        case .create:
            let full = values.map { $0 ?? .null }
            try checkWholeRow(rc, h, full)
            if plan.wasAlive {
                try updateRow(h, id: rc.id, mask: all, values: full.map { Optional($0) }, cl: plan.cl, clocks: clocks)
            } else {
                try db.execute(sql: "DELETE FROM _fb_tombstone WHERE tbl = ? AND row_id = ?", arguments: [h.index, rc.id])
                let ins = try statement(StatementKey(table: h.index, kind: 1, mask: 0), h.insertSQL)
                ins.bind(1, rc.id)
                for (i, v) in full.enumerated() { ins.bind(Int32(i + 2), v) }
                ins.bind(Int32(n + 2), plan.cl)
                ins.bind(Int32(n + 3), clocks.bytes)
                try ins.run()
            }
            try log(h, id: rc.id, op: .remote, cl: plan.cl, hlc: rc.hlc, site: site, fields: all, payload: superseded(plan.superseded(columns: n)))
        case .moveExistence where !plan.isAlive:
            try db.execute(sql: "UPDATE _fb_tombstone SET hlc = ?, site = ? WHERE tbl = ? AND row_id = ?",
                           arguments: [plan.existence.hlc.rawValue, Int64(site), h.index, rc.id])
            try log(h, id: rc.id, op: .remote, cl: plan.cl, hlc: rc.hlc, site: site, fields: 0, payload: nil)
        case .moveExistence, .update:
            // Each column keeps its own clock (re-encoding keeps them); the existence clock may move.
            clocks.hlc[0] = plan.existence.hlc.rawValue
            clocks.site[0] = site
            try updateRow(h, id: rc.id, mask: mask, values: values, cl: plan.cl, clocks: clocks)
            try log(h, id: rc.id, op: .remote, cl: plan.cl, hlc: rc.hlc, site: site, fields: mask, payload: superseded(plan.superseded(columns: n)))
        }

        for f in plan.lost {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO _fb_lost (tbl,row_id,field,hlc,site,cl,value,seq) VALUES (?,?,?,?,?,?,?,?)")
                .execute(arguments: [h.index, rc.id, Int64(f.column), f.version.hlc.rawValue, Int64(try localIndex(of: f.version.site)), rc.cl, f.value, nextSeq])
        }
    }

    /// The model's rules for a row that starts a live incarnation here: its every field is
    /// known (`full`; a field the change does not carry is empty). The required fields always;
    /// the rules across fields when the row is one write (every field stamped with the row's own
    /// clock), not when it is the merge of concurrent edits (see `TableSchema.checkRow`).
    private func checkWholeRow(_ rc: RowChange, _ h: TableHandle, _ full: [Value]) throws {
        let oneWrite = rc.fields.allSatisfy { $0.hlc == rc.hlc && $0.site == rc.site }
        do { try h.schema.checkRow(full, crossField: oneWrite) } catch {
            throw ReplicaError(.invalid, "\(error) (row \(rc.id))", table: h.schema.name, id: rc.id, modelError: error)
        }
    }

    /// A tombstone: its causal length, the clock that set it, and the values that never change.
    struct Tombstone {
        var cl: Int64
        var hlc: Int64
        var site: Int32
        var fixed: [ValueCodec.Entry]
    }

    func tombstoneRow(_ h: TableHandle, _ id: String) throws -> Tombstone? {
        guard hasTombstones else { return nil }
        guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT cl, hlc, site, fixed, part FROM _fb_tombstone WHERE tbl = ? AND row_id = ?"),
                                       arguments: [h.index, id]) else { return nil }
        var fixed = (r[3] as Data?).map(ValueCodec.decode) ?? []
        // Tombstones written before `fixed` existed still know their partition.
        if let pc = h.partitionColumn, let part = r[4] as String?, !fixed.contains(where: { $0.column == pc }) {
            fixed.append(.init(column: pc, value: .text(part), clock: nil))
        }
        return Tombstone(cl: r[0], hlc: r[1], site: Int32(r[2] as Int64), fixed: fixed)
    }

    /// Writes (or replaces) the tombstone of a row whose last values were `values` (nil where unknown).
    func writeTombstone(_ h: TableHandle, _ id: String, cl: Int64, hlc: Int64, site: Int32, values: [Value?]) throws {
        var fixed: [UInt8] = []
        for c in h.immutableColumns { if let v = values[c] { ValueCodec.append(.init(column: c, value: v, clock: nil), to: &fixed) } }
        let part = h.partitionColumn.flatMap { values[$0]?.text }
        try db.execute(sql: "INSERT OR REPLACE INTO _fb_tombstone (tbl,row_id,cl,hlc,site,part,fixed) VALUES (?,?,?,?,?,?,?)",
                       arguments: [h.index, id, cl, hlc, Int64(site), part, fixed.isEmpty ? nil : Data(fixed)])
        hasTombstones = true
    }
}

extension ReplicaWriter {
    /// What never changes of a row this replica holds or held (its region and parent ids), by
    /// field name; nil when the row was never seen. Read from the live row or its tombstone.
    public func fixedValues(_ table: String, id: String) throws -> [String: Value]? {
        let h = try replica.handle(table)
        var out: [String: Value] = [:]
        let s = try statement(StatementKey(table: h.index, kind: 5, mask: 0), h.rowSQL)
        s.bind(1, id)
        if try s.next() {
            defer { s.reset() }
            for c in h.immutableColumns { out[h.schema.columns[c].name] = s.value(Int32(c)) }
            return out
        }
        guard let dead = try tombstoneRow(h, id) else { return nil }
        for e in dead.fixed where e.column < h.columnCount { out[h.schema.columns[e.column].name] = e.value }
        return out
    }

    /// Applies a changeset like `apply(_:origin:)`, accepting clocks however far ahead of this
    /// replica's time (an operator releasing a quarantined change on purpose).
    public func applyIgnoringDrift(_ cs: Changeset, origin: Int64 = 0) throws -> ApplyReport {
        let saved = clock.maxDriftMillis
        clock.maxDriftMillis = .max / 2
        defer { clock.maxDriftMillis = saved }
        return try apply(cs, origin: origin)
    }
}
