import FieldbookModel
import Foundation
import GRDBSQLite

/// The binary form of the values a log entry records (its `payload`), for history.
///
/// Each entry: u8 column index, u8 flags (bit 0: an explicit clock follows: i64 HLC + i32 site;
/// otherwise the entry's own clock applies), then the value: tag 0 null, 1 i64, 2 f64,
/// 3 u32 length + UTF-8 (all little-endian).
enum ValueCodec {
    struct Entry: Equatable {
        var column: Int
        var value: Value
        var clock: (hlc: Int64, site: Int32)?

        static func == (a: Entry, b: Entry) -> Bool {
            a.column == b.column && a.value == b.value && a.clock?.hlc == b.clock?.hlc && a.clock?.site == b.clock?.site
        }
    }

    static func append(_ e: Entry, to d: inout [UInt8]) {
        d.append(UInt8(e.column))
        d.append(e.clock == nil ? 0 : 1)
        if let c = e.clock {
            appendInt(c.hlc, to: &d)
            appendInt(c.site, to: &d)
        }
        switch e.value {
        case .null: d.append(0)
        case .integer(let i): d.append(1); appendInt(i, to: &d)
        case .real(let x): d.append(2); appendInt(x.bitPattern, to: &d)
        case .text(let s):
            d.append(3)
            appendInt(UInt32(s.utf8.count), to: &d)
            d.append(contentsOf: s.utf8)
        }
    }

    /// Appends an entry straight from an SQLite value (no intermediate `Value`).
    static func append(column: Int, clock: (hlc: Int64, site: Int32), sqliteValue v: OpaquePointer?, to d: inout [UInt8]) {
        d.append(UInt8(column))
        d.append(1)
        appendInt(clock.hlc, to: &d)
        appendInt(clock.site, to: &d)
        switch sqlite3_value_type(v) {
        case SQLITE_NULL: d.append(0)
        case SQLITE_INTEGER: d.append(1); appendInt(sqlite3_value_int64(v), to: &d)
        case SQLITE_FLOAT: d.append(2); appendInt(sqlite3_value_double(v).bitPattern, to: &d)
        default:
            let n = Int(sqlite3_value_bytes(v))
            d.append(3)
            appendInt(UInt32(n), to: &d)
            if n > 0, let p = sqlite3_value_text(v) { d.append(contentsOf: UnsafeBufferPointer(start: p, count: n)) }
        }
    }

    static func decode(_ d: Data) -> [Entry] {
        var out: [Entry] = []
        let bytes = [UInt8](d)
        var p = 0
        func read<T: FixedWidthInteger>(_: T.Type) -> T? {
            let n = MemoryLayout<T>.size
            guard p + n <= bytes.count else { return nil }
            var v: T = 0
            for k in 0..<n { v |= T(truncatingIfNeeded: bytes[p + k]) << (8 * k) }
            p += n
            return v
        }
        while p + 3 <= bytes.count {
            let col = Int(bytes[p])
            let flags = bytes[p + 1]
            p += 2
            var clock: (Int64, Int32)? = nil
            if flags & 1 != 0 {
                guard let h = read(Int64.self), let s = read(Int32.self) else { break }
                clock = (h, s)
            }
            guard let tag = read(UInt8.self) else { break }
            let value: Value
            switch tag {
            case 0: value = .null
            case 1: guard let i = read(Int64.self) else { return out }; value = .integer(i)
            case 2: guard let b = read(UInt64.self) else { return out }; value = .real(Double(bitPattern: b))
            case 3:
                guard let n = read(UInt32.self), p + Int(n) <= bytes.count else { return out }
                value = .text(String(decoding: bytes[p..<(p + Int(n))], as: UTF8.self))
                p += Int(n)
            default: return out
            }
            out.append(Entry(column: col, value: value, clock: clock))
        }
        return out
    }

    private static func appendInt<T: FixedWidthInteger>(_ v: T, to d: inout [UInt8]) {
        var x = v.littleEndian
        for _ in 0..<MemoryLayout<T>.size {
            d.append(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
    }
}
