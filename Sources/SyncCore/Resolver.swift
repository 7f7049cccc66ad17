import FieldbookModel

/// The last-writer-wins decisions, as pure functions of the local and incoming versions.
///
/// A row's existence is its causal length `cl` (odd = alive, even = deleted); it only grows.
/// A field write carries the causal length of the row incarnation it was made in:
/// - a write made in an older incarnation than the local one is stale and loses;
/// - a write made in a newer incarnation starts that incarnation locally (the row is alive,
///   fields of the older incarnation are dropped) and wins;
/// - within the same incarnation, the higher `FieldVersion` (HLC, then site id) wins.
///
/// Each rule is a join on a total order, so merging is commutative, associative and idempotent.
public enum Resolver {
    public enum FieldOutcome: Sendable, Equatable {
        /// Same incarnation, newer version: take the incoming value.
        case wins
        /// Newer incarnation: the row becomes alive at the incoming causal length, all its
        /// older fields are cleared, and the incoming value is taken.
        case winsNewIncarnation
        /// Exactly the version already held: nothing to do.
        case duplicate
        /// Same incarnation, older version: keep the local value (the incoming one goes to history).
        case loses
        /// Written in an older incarnation (for example, an edit concurrent with a delete): keep local.
        case stale

        public var takesValue: Bool { self == .wins || self == .winsNewIncarnation }
    }

    public enum ExistenceOutcome: Sendable, Equatable {
        /// The incoming causal length is larger: delete (even) or re-create (odd) the row.
        case adopt
        /// The same causal length, set by a greater version (two replicas deleted, or re-created,
        /// the row concurrently): keep the state, record the greater version as the one that set it,
        /// so every replica names the same deleter.
        case newerVersion
        /// The incoming causal length is smaller, or equal with a version not greater: nothing changes.
        case ignore
    }

    /// Decides an incoming field write.
    /// - Parameters:
    ///   - incomingCL: the causal length the write was made at (odd).
    ///   - incoming: the write's version.
    ///   - localCL: the row's local causal length (0 when the row was never seen).
    ///   - local: the field's local version within the local incarnation, if any.
    public static func field(incomingCL: Int64, incoming: FieldVersion, localCL: Int64, local: FieldVersion?) -> FieldOutcome {
        if incomingCL > localCL { return .winsNewIncarnation }
        if incomingCL < localCL { return .stale }
        guard let local else { return .wins }
        if incoming > local { return .wins }
        if incoming == local { return .duplicate }
        return .loses
    }

    /// Decides an incoming existence change (delete or re-creation).
    /// - Parameters:
    ///   - incoming: the version of the change that set the incoming causal length.
    ///   - local: the version that set the local one (nil when the row was never seen).
    public static func existence(incomingCL: Int64, incoming: FieldVersion, localCL: Int64, local: FieldVersion?) -> ExistenceOutcome {
        if incomingCL > localCL { return .adopt }
        if incomingCL == localCL, let local, incoming > local { return .newerVersion }
        return .ignore
    }

    /// Whether an incoming value of a field that never changes (the owning region, a parent id)
    /// may be taken: always when the row was never seen (`held` nil), else only when it is the
    /// value the row had — in every incarnation, so a re-creation cannot move a record.
    public static func immutableAccepts(incoming: Value, held: Value?) -> Bool {
        guard let held else { return true }
        return held == incoming
    }

    /// The causal length after a local delete: the next even number.
    public static func clAfterDelete(_ cl: Int64) -> Int64 { cl % 2 == 1 ? cl + 1 : cl }

    /// The causal length after a local (re-)creation: the next odd number (1 for a new row).
    public static func clAfterCreate(_ cl: Int64) -> Int64 { cl % 2 == 0 ? cl + 1 : cl }
}
