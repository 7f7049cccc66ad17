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
        case .sealed(let b):
            d.append(4)
            appendInt(UInt32(b.count), to: &d)
            d.append(contentsOf: b)
        }
    }

    /// Appends an entry straight from an SQLite value (no intermediate `Value`). The fixed part
    /// is assembled on the stack and appended at once (this runs for every local update).
    static func append(column: Int, clock: (hlc: Int64, site: Int32), sqliteValue v: OpaquePointer?, to d: inout [UInt8]) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { p in
            p[0] = UInt8(truncatingIfNeeded: column)
            p[1] = 1
            p.storeBytes(of: clock.hlc.littleEndian, toByteOffset: 2, as: Int64.self)
            p.storeBytes(of: clock.site.littleEndian, toByteOffset: 10, as: Int32.self)
            switch sqlite3_value_type(v) {
            case SQLITE_NULL:
                p[14] = 0
                d.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<15]))
            case SQLITE_INTEGER:
                p[14] = 1
                p.storeBytes(of: sqlite3_value_int64(v).littleEndian, toByteOffset: 15, as: Int64.self)
                d.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<23]))
            case SQLITE_FLOAT:
                p[14] = 2
                p.storeBytes(of: sqlite3_value_double(v).bitPattern.littleEndian, toByteOffset: 15, as: UInt64.self)
                d.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<23]))
            case SQLITE_BLOB:
                let n = Int(sqlite3_value_bytes(v))
                p[14] = 4
                p.storeBytes(of: UInt32(truncatingIfNeeded: n).littleEndian, toByteOffset: 15, as: UInt32.self)
                d.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<19]))
                if n > 0, let blob = sqlite3_value_blob(v) { d.append(contentsOf: UnsafeRawBufferPointer(start: blob, count: n)) }
            default:
                let text = sqlite3_value_text(v)
                let n = Int(sqlite3_value_bytes(v))
                p[14] = 3
                p.storeBytes(of: UInt32(truncatingIfNeeded: n).littleEndian, toByteOffset: 15, as: UInt32.self)
                d.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<19]))
                if n > 0, let text { d.append(contentsOf: UnsafeBufferPointer(start: text, count: n)) }
            }
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
            case 4:
                guard let n = read(UInt32.self), p + Int(n) <= bytes.count else { return out }
                value = .sealed(Array(bytes[p..<(p + Int(n))]))
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
