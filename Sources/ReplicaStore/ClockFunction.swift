import FieldbookModel
import Foundation
import GRDB
import GRDBSQLite

/// What `fb_setclock` saw of the row it changed: its causal length and the previous value and
/// clock of each column it set. The writer turns this into the log entry (history).
final class ClockCapture {
    var cl: Int64 = 0
    var previous: [ValueCodec.Entry] = []
}

/// `fb_setclock(clocks, mask, hlc, site, cl, old_1, …, old_k)`: the row's clock vector with the
/// columns of `mask` set to (`hlc`, `site`). The `old_i` arguments are the columns of `mask` in
/// order: SQLite evaluates them against the row before the update, so the function hands the
/// overwritten values (with their clocks) to the writer without a separate read.
enum ClockFunction {

    static func register(_ db: Database, capture: ClockCapture?) {
        let app = capture.map { Unmanaged.passUnretained($0).toOpaque() }
        sqlite3_create_function_v2(db.sqliteConnection, "fb_setclock", -1, SQLITE_UTF8, app, { ctx, argc, argv in
            guard let argv, argc >= 5, let blob = sqlite3_value_blob(argv[0]) else { sqlite3_result_null(ctx); return }
            let n = Int(sqlite3_value_bytes(argv[0]))
            let mask = sqlite3_value_int64(argv[1])
            let hlc = sqlite3_value_int64(argv[2])
            let site = Int32(truncatingIfNeeded: sqlite3_value_int64(argv[3]))
            let columns = 64 - mask.leadingZeroBitCount
            var clocks = ClockVector(bytes: UnsafeRawBufferPointer(start: blob, count: n), count: columns + 1)
            let capture = sqlite3_user_data(ctx).map { Unmanaged<ClockCapture>.fromOpaque($0).takeUnretainedValue() }
            capture?.cl = sqlite3_value_int64(argv[4])
            capture?.previous.removeAll(keepingCapacity: true)
            var k: Int32 = 5
            for c in 0..<columns where mask & (1 << c) != 0 {
                if let capture, k < argc {
                    capture.previous.append(.init(column: c, value: ClockFunction.value(argv[Int(k)]), clock: (clocks.hlc[c + 1], clocks.site[c + 1])))
                }
                k += 1
                clocks.hlc[c + 1] = hlc
                clocks.site[c + 1] = site
            }
            // Keep overrides of columns beyond the highest one in mask.
            var out = clocks.bytes
            var p = ClockVector.headerSize
            while p + ClockVector.overrideSize <= n {
                if Int(blob.load(fromByteOffset: p, as: UInt8.self)) >= columns {
                    for j in 0..<ClockVector.overrideSize { out.append(blob.load(fromByteOffset: p + j, as: UInt8.self)) }
                }
                p += ClockVector.overrideSize
            }
            out.withUnsafeBytes { raw in sqlite3_result_blob(ctx, raw.baseAddress, Int32(raw.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self)) }
        }, nil, nil, nil)
    }

    static func value(_ v: OpaquePointer?) -> Value {
        switch sqlite3_value_type(v) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_value_int64(v))
        case SQLITE_FLOAT: return .real(sqlite3_value_double(v))
        default:
            let n = Int(sqlite3_value_bytes(v))
            guard let p = sqlite3_value_text(v) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        }
    }
}
