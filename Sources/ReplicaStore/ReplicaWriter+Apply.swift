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
        let sites = try cs.sites.map { try localIndex(of: $0) }
        for (i, idx) in sites.enumerated() where idx != localSite {
            if let name = cs.name(ofSite: i) {
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
        ins.bind(Int32(n + 2), rc.cl)
        ins.bind(Int32(n + 3), clocks.bytes)
        guard try ins.run() == 1 else { return false }
        try log(h, id: rc.id, op: .remote, cl: rc.cl, hlc: rc.hlc, site: sites[rc.site], fields: all, payload: nil)
        return true
    }

    private func apply(_ rc: RowChange, _ h: TableHandle, columns: [Int], sites: [Int32], siteIDs remote: [SiteID]) throws -> ApplyReport {
        let n = h.columnCount
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
        } else if let dead = try tombstone(h, rc.id) {
            cl = dead
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
        if Resolver.existence(incomingCL: rc.cl, localCL: cl) == .adopt {
            cl = rc.cl
            clocks = ClockVector(count: n + 1)
            clocks.hlc[0] = rc.hlc
            clocks.site[0] = sites[rc.site]
            newIncarnation = true
            if rc.fields.isEmpty { report.applied += 1 }
        } else if rc.fields.isEmpty {
            report.ignored += 1
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
                if !newIncarnation, h.immutableColumns.contains(c), let o = old[c], o != f.value {
                    throw ReplicaError(.immutableField,
                        "\(h.schema.name).\(h.schema.columns[c].name) of \(rc.id) cannot change from \"\((old[c] ?? .null).display)\" to \"\(f.value.display)\"",
                        table: h.schema.name, id: rc.id)
                }
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
            // Deleted (now, or already): the row leaves its table; the tombstone keeps the causal length.
            if newIncarnation {
                if wasAlive { try db.execute(sql: "DELETE FROM \(h.quoted) WHERE id = ?", arguments: [rc.id]) }
                let part = h.partitionColumn.flatMap { old[$0]?.text }
                try db.execute(sql: "INSERT OR REPLACE INTO _fb_tombstone (tbl,row_id,cl,hlc,site,part) VALUES (?,?,?,?,?,?)",
                               arguments: [h.index, rc.id, cl, rc.hlc, Int64(site), part])
                hasTombstones = true
                try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: 0, payload: superseded(all))
            }
        } else if newIncarnation {
            let full = values.map { $0 ?? .null }
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
        } else if mask != 0 {
            try updateRow(h, id: rc.id, mask: mask, values: values, cl: cl, clocks: clocks)
            try log(h, id: rc.id, op: .remote, cl: cl, hlc: rc.hlc, site: site, fields: mask, payload: superseded(mask))
        }

        for (c, f) in lost {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO _fb_lost (tbl,row_id,field,hlc,site,cl,value,seq) VALUES (?,?,?,?,?,?,?,?)")
                .execute(arguments: [h.index, rc.id, Int64(c), f.hlc, Int64(sites[f.site]), rc.cl, f.value, nextSeq])
        }
        return report
    }
}
