import FieldbookModel
import Foundation
import GRDB
import GRDBSQLite

/// A prepared statement driven through SQLite's C API: bind, step, reset, with none of the
/// per-call argument boxing of the general API. The replica's hot paths (and the benchmark's
/// plain-SQLite baseline, so that both pay the same binding cost) use it.
public final class RawStatement {
    public let statement: Statement
    let db: Database
    private var handle: OpaquePointer { statement.sqliteStatement }
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    public init(_ db: Database, sql: String) throws {
        self.db = db
        statement = try db.makeStatement(sql: sql)
    }

    public func bind(_ i: Int32, _ v: Value) {
        switch v {
        case .null: sqlite3_bind_null(handle, i)
        case .integer(let x): sqlite3_bind_int64(handle, i, x)
        case .real(let x): sqlite3_bind_double(handle, i, x)
        case .text(let s): bind(i, s)
        case .sealed(let b):
            _ = b.withUnsafeBytes { sqlite3_bind_blob(handle, i, $0.baseAddress, Int32($0.count), RawStatement.transient) }
        }
    }

    public func bind(_ i: Int32, _ s: String) {
        var s = s
        s.withUTF8 { buf in
            _ = sqlite3_bind_text(handle, i, buf.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                                  Int32(buf.count), Self.transient)
        }
    }

    public func bind(_ i: Int32, _ x: Int64) { sqlite3_bind_int64(handle, i, x) }

    public func bind(_ i: Int32, _ d: Data?) {
        guard let d else { sqlite3_bind_null(handle, i); return }
        d.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(handle, i, raw.baseAddress, Int32(raw.count), Self.transient)
        }
    }

    public func bind(_ i: Int32, _ bytes: [UInt8]?) {
        guard let bytes else { sqlite3_bind_null(handle, i); return }
        bytes.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(handle, i, raw.baseAddress, Int32(raw.count), Self.transient)
        }
    }

    /// Runs the statement to completion; returns the number of rows it changed.
    @discardableResult
    public func run() throws -> Int {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        let rc = sqlite3_step(handle)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: db.lastErrorMessage, sql: statement.sql)
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}

extension RawStatement {
    /// Steps once: true when a row is available (read it, then call `reset()`); at the end it resets itself.
    public func next() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { reset(); return false }
        reset()
        throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: db.lastErrorMessage, sql: statement.sql)
    }

    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func int64(_ col: Int32) -> Int64 { sqlite3_column_int64(handle, col) }

    /// The blob of a column, valid only inside `body`.
    public func withBlob<T>(_ col: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let n = Int(sqlite3_column_bytes(handle, col))
        return try body(UnsafeRawBufferPointer(start: sqlite3_column_blob(handle, col), count: n))
    }

    public func data(_ col: Int32) -> Data {
        let n = Int(sqlite3_column_bytes(handle, col))
        guard n > 0, let p = sqlite3_column_blob(handle, col) else { return Data() }
        return Data(bytes: p, count: n)
    }

    public func value(_ col: Int32) -> Value {
        switch sqlite3_column_type(handle, col) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, col))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, col))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(handle, col))
            guard n > 0, let p = sqlite3_column_blob(handle, col) else { return .sealed([]) }
            return .sealed(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default:
            let n = Int(sqlite3_column_bytes(handle, col))
            guard let p = sqlite3_column_text(handle, col) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        }
    }
}
