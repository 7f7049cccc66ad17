/// What applying a changeset did. A field change counts once; a row change without fields
/// (a delete or a re-creation) counts once.
public struct ApplyReport: Sendable, Equatable, CustomStringConvertible {
    /// Changes that altered local state.
    public var applied: Int
    /// Changes already known, superseded by a newer local version, or made in an older incarnation.
    public var ignored: Int
    /// Row changes the model refused and that were kept aside (see `ReplicaWriter.apply(_:origin:setAside:)`).
    public var setAside: Int

    public init(applied: Int = 0, ignored: Int = 0, setAside: Int = 0) {
        self.applied = applied
        self.ignored = ignored
        self.setAside = setAside
    }

    public static func + (a: ApplyReport, b: ApplyReport) -> ApplyReport {
        ApplyReport(applied: a.applied + b.applied, ignored: a.ignored + b.ignored, setAside: a.setAside + b.setAside)
    }

    public var description: String { "applied \(applied), ignored \(ignored)" + (setAside > 0 ? ", set aside \(setAside)" : "") }
}
