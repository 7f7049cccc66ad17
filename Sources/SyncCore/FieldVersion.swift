import FieldbookModel

/// The version of one field write: its clock, ties broken by the writing site.
/// A total order, so every replica picks the same winner.
public struct FieldVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var hlc: HLC
    public var site: SiteID

    public init(hlc: HLC, site: SiteID) {
        self.hlc = hlc
        self.site = site
    }

    public static func < (a: FieldVersion, b: FieldVersion) -> Bool {
        a.hlc != b.hlc ? a.hlc < b.hlc : a.site < b.site
    }

    public var description: String { "\(hlc)@\(site)" }
}
