import FieldbookModel

/// Where a cell belongs: what its sealing binds, so that a server (or anyone between) cannot
/// move it to another region, table, row, field, clock or site, nor replay it there.
public struct CellAddress: Sendable, Equatable {
    public var region: String
    public var table: String
    public var row: String
    public var field: String
    public var hlc: Int64
    public var site: SiteID

    public init(region: String, table: String, row: String, field: String, hlc: Int64, site: SiteID) {
        self.region = region
        self.table = table
        self.row = row
        self.field = field
        self.hlc = hlc
        self.site = site
    }

    /// The associated data: a label, every part length-prefixed, the clock big-endian, the
    /// site's 16 bytes, and the epoch (docs/PROTOCOL.md, "Sealed values").
    func associatedData(epoch: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + row.utf8.count)
        out.append(contentsOf: Self.label)
        for part in [region, table, row, field] {
            let u = Array(part.utf8)
            out.append(UInt8(truncatingIfNeeded: u.count >> 8))
            out.append(UInt8(truncatingIfNeeded: u.count))
            out.append(contentsOf: u)
        }
        for k in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: hlc) >> (8 * UInt64(k)))) }
        out.append(contentsOf: site.bytes)
        for k in (0..<4).reversed() { out.append(UInt8(truncatingIfNeeded: epoch >> (8 * UInt32(k)))) }
        return out
    }

    static let label = Array("fieldbook cell v1".utf8)
}
