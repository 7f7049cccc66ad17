import FieldbookModel

/// A replica held in memory: the reference implementation of the merge rules, used by the
/// property tests and as the model the SQLite store must agree with. Pure: time is passed in.
public struct MemoryReplica: Sendable {
    public struct Field: Sendable, Equatable {
        public var value: Value
        public var version: FieldVersion

        public init(value: Value, version: FieldVersion) {
            self.value = value
            self.version = version
        }
    }

    public struct Row: Sendable, Equatable {
        public var cl: Int64
        public var existence: FieldVersion
        public var fields: [String: Field]
        public var isAlive: Bool { cl % 2 == 1 }
    }

    public let site: SiteID
    public private(set) var clock: HybridLogicalClock
    /// table → id → row (deleted rows are kept as tombstones with an even `cl`).
    public private(set) var rows: [String: [String: Row]] = [:]
    /// A value a field held or was offered, that is not (or no longer) its current one.
    public struct HistoryItem: Sendable, Hashable {
        public var field: String
        public var value: Value
        public var version: FieldVersion

        public init(field: String, value: Value, version: FieldVersion) {
            self.field = field
            self.value = value
            self.version = version
        }
    }
    /// table → id → the values received that were overwritten or lost (what history must keep).
    public private(set) var history: [String: [String: [HistoryItem]]] = [:]
    /// table → the column positions used by the merge, in order of first appearance.
    private var columns: [String: [String]] = [:]

    public init(site: SiteID, clock: HybridLogicalClock = HybridLogicalClock()) {
        self.site = site
        self.clock = clock
    }

    /// The visible state: live rows and their field values.
    public var state: [String: [String: [String: Value]]] {
        rows.mapValues { table in
            table.filter { $0.value.isAlive }.mapValues { $0.fields.mapValues(\.value) }
        }
    }

    /// Creates (or re-creates after a delete) a row with every field of `fields`; returns the change to send.
    public mutating func insert(table: String, id: String, fields: [String: Value], at now: Int64) throws(SyncCoreError) -> Changeset {
        let hlc = try clock.tick(physicalMillis: now)
        let v = FieldVersion(hlc: hlc, site: site)
        let old = rows[table]?[id]
        precondition(old?.isAlive != true, "insert of a live row")
        let cl = Resolver.clAfterCreate(old.map { $0.cl + 1 } ?? 1)
        rows[table, default: [:]][id] = Row(cl: cl, existence: v, fields: fields.mapValues { Field(value: $0, version: v) })
        return change(table: table, id: id, only: Set(fields.keys))
    }

    /// Sets fields of a live row; returns the change to send.
    public mutating func update(table: String, id: String, fields: [String: Value], at now: Int64) throws(SyncCoreError) -> Changeset {
        precondition(rows[table]?[id]?.isAlive == true, "update of a missing row")
        let hlc = try clock.tick(physicalMillis: now)
        let v = FieldVersion(hlc: hlc, site: site)
        for (k, value) in fields { rows[table]![id]!.fields[k] = Field(value: value, version: v) }
        return change(table: table, id: id, only: Set(fields.keys))
    }

    /// Deletes a live row; returns the change to send.
    public mutating func delete(table: String, id: String, at now: Int64) throws(SyncCoreError) -> Changeset {
        precondition(rows[table]?[id]?.isAlive == true, "delete of a missing row")
        let hlc = try clock.tick(physicalMillis: now)
        var row = rows[table]![id]!
        row.cl = Resolver.clAfterDelete(row.cl)
        row.existence = FieldVersion(hlc: hlc, site: site)
        row.fields = [:]
        rows[table]![id] = row
        return change(table: table, id: id, only: [])
    }

    /// Every row as a change (its full current state).
    public func fullChangeset() -> Changeset {
        var cs = Changeset()
        for table in rows.keys.sorted() {
            for id in rows[table]!.keys.sorted() {
                let one = change(table: table, id: id, only: nil)
                cs = Self.concatenate(cs, one)
            }
        }
        return cs
    }

    /// Applies a changeset: each row as `RowMerge` plans it.
    public mutating func apply(_ cs: Changeset, at now: Int64) throws(SyncCoreError) -> ApplyReport {
        var report = ApplyReport()
        for t in cs.tables {
            var names = columns[t.table] ?? []
            let positions = t.fields.map { name -> Int in
                if let i = names.firstIndex(of: name) { return i }
                names.append(name)
                return names.count - 1
            }
            columns[t.table] = names
            for rc in t.rows {
                let ev = FieldVersion(hlc: HLC(rawValue: rc.hlc), site: cs.sites[rc.site])
                _ = try clock.receive(ev.hlc, physicalMillis: now)
                let incoming = RowMerge.Incoming(cl: rc.cl, existence: ev, fields: rc.fields.map {
                    RowMerge.Field(column: positions[$0.field], value: $0.value, version: FieldVersion(hlc: HLC(rawValue: $0.hlc), site: cs.sites[$0.site]))
                })
                for f in incoming.fields { _ = try clock.receive(f.version.hlc, physicalMillis: now) }
                let held = rows[t.table]?[rc.id]
                let local = held.map { r in
                    RowMerge.Local(cl: r.cl, existence: r.existence,
                                   versions: Dictionary(uniqueKeysWithValues: r.fields.compactMap { k, f in names.firstIndex(of: k).map { ($0, f.version) } }))
                }
                let plan: RowMerge.Plan
                do { plan = try RowMerge.plan(incoming, local: local) } catch { throw SyncCoreError(.refused, "\(error)") }
                report.applied += plan.applied
                report.ignored += plan.ignored
                // History: what the plan overwrites (of a live row), and what lost.
                let overwritten = plan.superseded(columns: names.count)
                for (k, f) in held?.fields ?? [:] where overwritten & (1 << Int64(names.firstIndex(of: k) ?? 0)) != 0 {
                    history[t.table, default: [:]][rc.id, default: []].append(HistoryItem(field: k, value: f.value, version: f.version))
                }
                for f in plan.lost {
                    history[t.table, default: [:]][rc.id, default: []].append(HistoryItem(field: names[f.column], value: f.value, version: f.version))
                }
                var row = held ?? Row(cl: 0, existence: ev, fields: [:])
                row.cl = plan.cl
                row.existence = plan.existence
                if plan.storage == .create || plan.storage == .delete { row.fields = [:] }
                for f in plan.taken { row.fields[names[f.column]] = Field(value: f.value, version: f.version) }
                if plan.storage != .nothing || held == nil { rows[t.table, default: [:]][rc.id] = row }
            }
        }
        return report
    }

    private func change(table: String, id: String, only: Set<String>?) -> Changeset {
        let row = rows[table]![id]!
        let names = row.fields.keys.filter { only?.contains($0) ?? true }.sorted()
        var sites: [SiteID] = []
        func index(_ s: SiteID) -> Int {
            if let i = sites.firstIndex(of: s) { return i }
            sites.append(s)
            return sites.count - 1
        }
        var rc = RowChange(id: id, cl: row.cl, hlc: row.existence.hlc.rawValue, site: index(row.existence.site))
        if row.isAlive {
            for (i, n) in names.enumerated() {
                let f = row.fields[n]!
                rc.fields.append(FieldChange(field: i, value: f.value, hlc: f.version.hlc.rawValue, site: index(f.version.site)))
            }
        }
        return Changeset(sites: sites, tables: [TableChanges(table: table, fields: row.isAlive ? names : [], rows: [rc])])
    }

    /// Joins two changesets into one (sites re-indexed).
    public static func concatenate(_ a: Changeset, _ b: Changeset) -> Changeset {
        var out = a
        var map: [Int] = []
        for s in b.sites {
            if let i = out.sites.firstIndex(of: s) { map.append(i) } else { out.sites.append(s); map.append(out.sites.count - 1) }
        }
        for t in b.tables {
            var t2 = t
            t2.rows = t.rows.map { r in
                var r = r
                r.site = map[r.site]
                r.fields = r.fields.map { var f = $0; f.site = map[f.site]; return f }
                return r
            }
            out.tables.append(t2)
        }
        return out
    }
}
