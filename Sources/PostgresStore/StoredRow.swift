import FieldbookModel
import Foundation
import SyncCore

/// One cell as the PostgreSQL store keeps it (in `fb_row.cells` and in log entries): the column,
/// its sealed value, and the version that wrote it.
struct StoredCell: Codable, Sendable, Equatable {
    var c: Int
    var v: Value
    var h: Int64
    var s: SiteID

    var version: FieldVersion { FieldVersion(hlc: HLC(rawValue: h), site: s) }
}

/// A row of `fb_row`, decoded.
struct StoredRow: Sendable {
    var table: String
    var id: String
    var region: String?
    var parent: String?
    var cl: Int64
    var existence: FieldVersion
    var cells: [StoredCell]
}

/// A log entry's body: the row change as applied (its causal length, the version that set it,
/// and the cells taken).
struct LoggedChange: Codable, Sendable {
    var cl: Int64
    var h: Int64
    var s: SiteID
    var f: [StoredCell]
}

enum CellCoding {
    static func encode<T: Encodable>(_ value: T) throws -> Data { try JSONEncoder().encode(value) }
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T { try JSONDecoder().decode(type, from: data) }
}
