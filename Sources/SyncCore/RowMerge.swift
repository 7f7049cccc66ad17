import FieldbookModel

/// The one merge decision: what an incoming row change does to a replica's row. Pure: the
/// replica reads its row (or its tombstone, or nothing), asks for the plan, and only carries it
/// out. The reference replica (`MemoryReplica`), the SQLite replica and, through it, the server
/// all merge with this; `Resolver` holds the rules it is made of.
public enum RowMerge {
    /// One incoming field write.
    public struct Field: Sendable, Equatable {
        /// The column's position in the table.
        public var column: Int
        public var value: Value
        public var version: FieldVersion

        public init(column: Int, value: Value, version: FieldVersion) {
            self.column = column
            self.value = value
            self.version = version
        }
    }

    /// A row change as it arrives: its causal length, the version that set it, its field writes.
    public struct Incoming: Sendable, Equatable {
        public var cl: Int64
        public var existence: FieldVersion
        public var fields: [Field]

        public init(cl: Int64, existence: FieldVersion, fields: [Field]) {
            self.cl = cl
            self.existence = existence
            self.fields = fields
        }
    }

    /// What the replica holds of the row: a live row or a tombstone.
    public struct Local: Sendable, Equatable {
        public var cl: Int64
        public var existence: FieldVersion
        /// The version of each column that has one in the current incarnation (live rows only).
        public var versions: [Int: FieldVersion]
        /// The values of the columns that never change, as the row has (or, deleted, had) them.
        public var fixed: [Int: Value]

        public init(cl: Int64, existence: FieldVersion, versions: [Int: FieldVersion], fixed: [Int: Value] = [:]) {
            self.cl = cl
            self.existence = existence
            self.versions = versions
            self.fixed = fixed
        }

        public var isAlive: Bool { cl % 2 == 1 }
    }

    /// What to do with the stored row.
    public enum Storage: Sendable, Equatable {
        /// Nothing changes.
        case nothing
        /// The row becomes alive in a new incarnation: every column is the incoming value or empty
        /// (a live row is overwritten; a tombstone is removed).
        case create
        /// The row is deleted: a live row leaves its table; the tombstone takes the new causal
        /// length, the version and what never changes.
        case delete
        /// Only the version that set the causal length moves (equal causal length, greater
        /// version): on the tombstone, or on the live row with the `taken` fields.
        case moveExistence
        /// The `taken` fields are written in the current incarnation.
        case update
    }

    /// The plan for one incoming row change.
    public struct Plan: Sendable, Equatable {
        public var storage: Storage
        /// The row's causal length and existence version afterwards.
        public var cl: Int64
        public var existence: FieldVersion
        /// The incoming writes that win, in arrival order.
        public var taken: [Field]
        /// The incoming writes that lose (an older version, or an older incarnation): history.
        public var lost: [Field]
        /// Whether the local row was alive (its overwritten values then go to history).
        public var wasAlive: Bool
        public var applied: Int
        public var ignored: Int

        public var isAlive: Bool { cl % 2 == 1 }
        /// The columns whose local values this plan overwrites: all of them for a new
        /// incarnation or a delete of a live row, else the taken ones.
        public func superseded(columns n: Int) -> Int64 {
            guard wasAlive else { return 0 }
            if storage == .create || storage == .delete { return (1 << Int64(n)) - 1 }
            return taken.reduce(0) { $0 | (1 << Int64($1.column)) }
        }
    }

    /// Why a change is refused: it would change what never changes.
    public enum Refusal: Error, Sendable, Equatable {
        /// A column that never changes would take another value than the row has or had.
        case immutableChanged(column: Int, held: Value, incoming: Value)
        /// A new incarnation of a row this replica never saw does not say what never changes.
        case immutableMissing(column: Int)
    }

    /// The plan for `incoming` on a replica holding `local` (nil: never seen).
    /// - Parameter immutable: the columns that never change (region, parent id).
    public static func plan(_ incoming: Incoming, local: Local?, immutable: [Int] = []) throws(Refusal) -> Plan {
        var cl = local?.cl ?? 0
        var existence = local?.existence ?? incoming.existence
        var versions = local?.versions ?? [:]
        let wasAlive = local?.isAlive ?? false
        var applied = 0, ignored = 0
        var storage = Storage.nothing

        switch Resolver.existence(incomingCL: incoming.cl, incoming: incoming.existence, localCL: cl, local: local?.existence) {
        case .adopt:
            cl = incoming.cl
            existence = incoming.existence
            versions = [:]
            storage = incoming.cl % 2 == 1 ? .create : .delete
            if incoming.fields.isEmpty { applied += 1 }
        case .newerVersion:
            existence = incoming.existence
            storage = .moveExistence
            if incoming.fields.isEmpty { applied += 1 }
        case .ignore:
            if incoming.fields.isEmpty { ignored += 1 }
        }

        for c in immutable {
            guard let f = incoming.fields.first(where: { $0.column == c }) else {
                if storage == .create, local?.fixed[c] == nil { throw .immutableMissing(column: c) }
                continue
            }
            guard Resolver.immutableAccepts(incoming: f.value, held: local?.fixed[c]) else {
                throw .immutableChanged(column: c, held: local?.fixed[c] ?? .null, incoming: f.value)
            }
        }

        var taken: [Field] = []
        var lost: [Field] = []
        for f in incoming.fields {
            switch Resolver.field(incomingCL: incoming.cl, incoming: f.version, localCL: cl, local: versions[f.column]) {
            case .wins, .winsNewIncarnation:
                versions[f.column] = f.version
                taken.append(f)
                applied += 1
            case .duplicate:
                ignored += 1
            case .loses, .stale:
                lost.append(f)
                ignored += 1
            }
        }
        // A later write of the same column in one change replaces an earlier one.
        if taken.count > 1 {
            var last: [Int: Int] = [:]
            for (i, f) in taken.enumerated() { last[f.column] = i }
            taken = taken.enumerated().filter { last[$0.element.column] == $0.offset }.map(\.element)
        }
        if storage == .nothing && !taken.isEmpty && cl % 2 == 1 { storage = .update }
        return Plan(storage: storage, cl: cl, existence: existence, taken: cl % 2 == 1 ? taken : [], lost: lost,
                    wasAlive: wasAlive, applied: applied, ignored: ignored)
    }
}
