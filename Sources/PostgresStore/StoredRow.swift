import FieldbookModel
import Foundation
import SyncCore
import SyncServer

/// One cell as the PostgreSQL store keeps it (in `fb_row.cells` and in log entries): the column,
/// its sealed value, and the version that wrote it.
struct StoredCell: Sendable, Equatable {
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
struct LoggedChange: Sendable {
    var cl: Int64
    var h: Int64
    var s: SiteID
    var f: [StoredCell]
}

/// The stored forms, binary (the model's wire encoding: varints, tagged values, 16-byte sites):
/// cells `count · (column · value · hlc · site)*`, a log entry `"L1" · cl · hlc · site · cells`.
enum CellCoding {
    static func encode(_ cells: [StoredCell]) -> Data {
        var w = BinaryWriter()
        write(cells, &w)
        return Data(w.bytes)
    }

    static func encode(_ change: LoggedChange) -> Data {
        var w = BinaryWriter()
        w.raw(Array("L1".utf8))
        w.signed(change.cl)
        w.signed(change.h)
        w.raw(change.s.bytes)
        write(change.f, &w)
        return Data(w.bytes)
    }

    static func write(_ cells: [StoredCell], _ w: inout BinaryWriter) {
        w.count(cells.count)
        for c in cells {
            w.count(c.c)
            w.value(c.v)
            w.signed(c.h)
            w.raw(c.s.bytes)
        }
    }

    static func cells(_ data: Data) throws -> [StoredCell] {
        var r = BinaryReader([UInt8](data), name: "cells")
        let cells = try read(&r)
        try r.end()
        return cells
    }

    static func change(_ data: Data) throws -> LoggedChange {
        var r = BinaryReader([UInt8](data), name: "log entry")
        try r.magic("L1")
        let cl = try r.signed("cl"), h = try r.signed("hlc"), s = try site(&r)
        let f = try read(&r)
        try r.end()
        return LoggedChange(cl: cl, h: h, s: s, f: f)
    }

    static func read(_ r: inout BinaryReader) throws -> [StoredCell] {
        let n = try r.count("cells")
        var out: [StoredCell] = []
        out.reserveCapacity(min(n, 64))
        for _ in 0..<n {
            let c = try r.count("column"), v = try r.value("value"), h = try r.signed("hlc"), s = try site(&r)
            out.append(StoredCell(c: c, v: v, h: h, s: s))
        }
        return out
    }

    static func site(_ r: inout BinaryReader) throws -> SiteID {
        guard let s = SiteID(bytes: try r.raw(16, "site")) else { throw ServerError(.internalServerError, "store_failed", "a stored site id is unreadable") }
        return s
    }
}
