/// What applying a changeset did. A field change counts once; a row change without fields
/// (a delete or a re-creation) counts once.
public struct ApplyReport: Sendable, Equatable, CustomStringConvertible {
    /// Changes that altered local state.
    public var applied: Int
    /// Changes already known, superseded by a newer local version, or made in an older incarnation.
    public var ignored: Int

    public init(applied: Int = 0, ignored: Int = 0) {
        self.applied = applied
        self.ignored = ignored
    }

    public static func + (a: ApplyReport, b: ApplyReport) -> ApplyReport {
        ApplyReport(applied: a.applied + b.applied, ignored: a.ignored + b.ignored)
    }

    public var description: String { "applied \(applied), ignored \(ignored)" }
}
