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
    public func apply(_ cs: Changeset, origin: Int64 = 0) throws -> ApplyReport {
        self.origin = origin
        defer { self.origin = 0 }
        // Only the sites some change refers to are registered (a listed site that no change
        // uses must not leave a permanent trace).
        var used = [Bool](repeating: false, count: cs.sites.count)
        for t in cs.tables {
            for rc in t.rows {
                used[rc.site] = true
                for f in rc.fields { used[f.site] = true }
            }
        }
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
                report = report + (try apply(rc, h, columns: columns, sites: sites, siteIDs: cs.sites))
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
        // A row that carries every field is usually one this replica has never seen (a first
        // sync): insert it without reading first; if it exists after all, merge as usual.
        if rc.fields.count == n, rc.cl % 2 == 1, try insertIfNew(rc, h, columns: columns, sites: sites) {
            return ApplyReport(applied: rc.fields.count)
        }

        // Local state: a live row, a tombstone, or nothing.
        var cl: Int64 = 0
        var clocks = ClockVector(count: n + 1)
        var alive = false
        var old = [Value?](repeating: nil, count: n)
        let state = try statement(StatementKey(table: h.index, kind: 5, mask: 0), h.rowSQL)
        state.bind(1, rc.id)
        if try state.next() {
            defer { state.reset() }
            cl = state.int64(Int32(n))
            clocks = ClockVector(data: state.data(Int32(n + 1)), count: n + 1)
            alive = true
            // Only the columns this change may overwrite (history) or must not change (immutable).
            let adopting = rc.cl > cl
            for f in rc.fields { old[columns[f.field]] = state.value(Int32(columns[f.field])) }
            if adopting { for c in 0..<n where old[c] == nil { old[c] = state.value(Int32(c)) } }
            for c in h.immutableColumns where old[c] == nil { old[c] = state.value(Int32(c)) }
        } else if let dead = try tombstoneRow(h, rc.id) {
            cl = dead.cl
            clocks.hlc[0] = dead.hlc
            clocks.site[0] = dead.site
            // What never changes is remembered by the tombstone, so a re-creation cannot move the record.
            for e in dead.fixed where e.column < n && old[e.column] == nil { old[e.column] = e.value }
        }
        let wasAlive = alive
        let wasCL = cl
        let oldClocks = clocks
        /// The overwritten values of the columns in `m`, with their clocks (history).
        func superseded(_ m: Int64) -> [UInt8] {
            var out: [UInt8] = []
            guard wasAlive else { return out }
            for c in 0..<n where m & (1 << c) != 0 {
                ValueCodec.append(.init(column: c, value: old[c] ?? .null, clock: (oldClocks.hlc[c + 1], oldClocks.site[c + 1])), to: &out)
            }
            return out
        }

        var report = ApplyReport()
        var newIncarnation = false
        var newerExistence = false
        let incomingExistence = FieldVersion(hlc: HLC(rawValue: rc.hlc), site: remote[rc.site])
        let localExistence: FieldVersion? = cl == 0 ? nil
            : FieldVersion(hlc: HLC(rawValue: clocks.hlc[0]), site: siteIDs[clocks.site[0]] ?? remote[rc.site])
        switch Resolver.existence(incomingCL: rc.cl, incoming: incomingExistence, localCL: cl, local: localExistence) {
        case .adopt:
            cl = rc.cl
            clocks = ClockVector(count: n + 1)
            clocks.hlc[0] = rc.hlc
            clocks.site[0] = sites[rc.site]
            newIncarnation = true
            if rc.fields.isEmpty { report.applied += 1 }
        case .newerVersion:
            // Same causal length, greater version: it names who deleted (or re-created) the row.
            // Only the existence clock moves; each column keeps its own (re-encoding keeps them).
            var moved = ClockVector(count: n + 1)
            moved.hlc[0] = rc.hlc
            moved.site[0] = sites[rc.site]
            for c in 0..<n { moved.hlc[c + 1] = clocks.hlc[c + 1]; moved.site[c + 1] = clocks.site[c + 1] }
            if wasAlive { clocks = moved }
            newerExistence = true
            if rc.fields.isEmpty { report.applied += 1 }
        case .ignore:
            if rc.fields.isEmpty { report.ignored += 1 }
        }
        for c in h.immutableColumns {
            guard let f = rc.fields.first(where: { columns[$0.field] == c }) else {
                // A new incarnation must say again what never changes, unless the row is known.
                if newIncarnation, cl % 2 == 1, old[c] == nil {
                    throw ReplicaError(.invalid, "\(h.schema.name).\(h.schema.columns[c].name) of \(rc.id) is required when the record is created",
                                       table: h.schema.name, id: rc.id)
                }
                continue
            }
            guard Resolver.immutableAccepts(incoming: f.value, held: old[c]) else {
                throw ReplicaError(.immutableField,
                    "\(h.schema.name).\(h.schema.columns[c].name) of \(rc.id) cannot change from \"\((old[c] ?? .null).display)\" to \"\(f.value.display)\"",
                    table: h.schema.name, id: rc.id)
            }
        }

        var values = [Value?](repeating: nil, count: n)
        var mask: Int64 = 0
        var lost: [(column: Int, change: FieldChange)] = []
        for f in rc.fields {
            let c = columns[f.field]
            let incoming = FieldVersion(hlc: HLC(rawValue: f.hlc), site: remote[f.site])
            let local: FieldVersion? = clocks.hlc[c + 1] == 0 ? nil
                : FieldVersion(hlc: HLC(rawValue: clocks.hlc[c + 1]), site: siteIDs[clocks.site[c + 1]] ?? remote[f.site])
            switch Resolver.field(incomingCL: rc.cl, incoming: incoming, localCL: cl, local: local) {
            case .wins, .winsNewIncarnation:
                values[c] = f.value
                mask |= 1 << c
                clocks.hlc[c + 1] = f.hlc
                clocks.site[c + 1] = sites[f.site]
                report.applied += 1
            case .duplicate:
                report.ignored += 1
            case .loses, .stale:
                lost.append((c, f))
                report.ignored += 1
            }
        }

        let site = sites[rc.site]
        let all: Int64 = (1 << Int64(n)) - 1
        if cl % 2 == 0 {
            // Deleted (now, or already): the row leaves its table; the tombstone keeps the causal
            // length, the region and what never changes.
            if newIncarnation {
                if wasAlive { try db.execute(sql: "DELETE FROM \(h.quoted) WHERE id = ?", arguments: [rc.id]) }
                try writeTombstone(h, rc.id, cl: cl, hlc: rc.hlc, site: site, values: old)
                try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: 0, payload: superseded(all))
            } else if newerExistence {
                try db.execute(sql: "UPDATE _fb_tombstone SET hlc = ?, site = ? WHERE tbl = ? AND row_id = ?",
                               arguments: [rc.hlc, Int64(site), h.index, rc.id])
                try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: 0, payload: nil)
            }
        } else if newIncarnation {
            let full = values.map { $0 ?? .null }
            try checkWholeRow(rc, h, full)
            if wasAlive {
                try updateRow(h, id: rc.id, mask: all, values: full.map { Optional($0) }, cl: cl, clocks: clocks)
            } else {
                if wasCL > 0 {
                    try db.execute(sql: "DELETE FROM _fb_tombstone WHERE tbl = ? AND row_id = ?", arguments: [h.index, rc.id])
                }
                let ins = try statement(StatementKey(table: h.index, kind: 1, mask: 0), h.insertSQL)
                ins.bind(1, rc.id)
                for (i, v) in full.enumerated() { ins.bind(Int32(i + 2), v) }
                ins.bind(Int32(n + 2), cl)
                ins.bind(Int32(n + 3), clocks.bytes)
                try ins.run()
            }
            try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: all, payload: superseded(all))
        } else if mask != 0 || (newerExistence && wasAlive) {
            try updateRow(h, id: rc.id, mask: mask, values: values, cl: cl, clocks: clocks)
            try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: mask, payload: superseded(mask))
        }

        for (c, f) in lost {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO _fb_lost (tbl,row_id,field,hlc,site,cl,value,seq) VALUES (?,?,?,?,?,?,?,?)")
                .execute(arguments: [h.index, rc.id, Int64(c), f.hlc, Int64(sites[f.site]), rc.cl, f.value, nextSeq])
        }
        return report
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
