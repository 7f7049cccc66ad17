import FieldbookModel
import Foundation
import GRDB
import GRDBSQLite

/// What `fb_setclock` saw of the row it changed: its causal length and the previous value and
/// clock of each column it set, already encoded as a log payload (`ValueCodec`). The writer
/// turns this into the log entry (history).
final class ClockCapture {
    var cl: Int64 = 0
    var payload: [UInt8] = []
}

/// `fb_setclock(clocks, mask, hlc, site, cl, old_1, …, old_k)`: the row's clock vector with the
/// columns of `mask` set to (`hlc`, `site`). The `old_i` arguments are the columns of `mask` in
/// order: SQLite evaluates them against the row before the update, so the function hands the
/// overwritten values (with their clocks) to the writer without a separate read.
enum ClockFunction {
    static func register(_ db: Database, capture: ClockCapture?) {
        let app = capture.map { Unmanaged.passUnretained($0).toOpaque() }
        // SQLITE_DIRECTONLY: callable from the writer's own statements only, never from a
        // trigger or view that a hostile file could carry.
        sqlite3_create_function_v2(db.sqliteConnection, "fb_setclock", -1, SQLITE_UTF8 | SQLITE_DIRECTONLY, app, { ctx, argc, argv in
            guard let argv, argc >= 5, let blob = sqlite3_value_blob(argv[0]) else { sqlite3_result_null(ctx); return }
            let n = Int(sqlite3_value_bytes(argv[0]))
            let mask = sqlite3_value_int64(argv[1])
            // A mask names columns 0…61 (`TableSchema` allows at most 62): a negative or wider one
            // would walk past the buffer sized from it.
            guard n >= ClockVector.headerSize, mask >= 0, mask < (1 << 62) else {
                sqlite3_result_error(ctx, "fb_setclock: bad clock vector or column mask", -1)
                return
            }
            let hlc = sqlite3_value_int64(argv[2])
            let site = Int32(truncatingIfNeeded: sqlite3_value_int64(argv[3]))
            let capture = sqlite3_user_data(ctx).map { Unmanaged<ClockCapture>.fromOpaque($0).takeUnretainedValue() }
            capture?.cl = sqlite3_value_int64(argv[4])
            capture?.payload.removeAll(keepingCapacity: true)
            let input = UnsafeRawBufferPointer(start: blob, count: n)
            let headerHLC = input.loadUnaligned(fromByteOffset: 0, as: Int64.self)
            let headerSite = input.loadUnaligned(fromByteOffset: 8, as: Int32.self)
            // Output: the input with the overrides of the columns in mask replaced (or added).
            let capacity = n + ClockVector.overrideSize * mask.nonzeroBitCount
            // Allocated by SQLite and handed over to it with the result (no second copy).
            guard let raw = sqlite3_malloc64(UInt64(capacity)) else { sqlite3_result_error_nomem(ctx); return }
            let buffer = UnsafeMutableRawBufferPointer(start: raw, count: capacity)
            buffer.copyMemory(from: input)
            var count = n
            var k: Int32 = 5
            var m = mask
            var c = 0
            while m != 0 {
                if m & 1 != 0 {
                    var at: Int? = nil
                    var p = ClockVector.headerSize
                    while p + ClockVector.overrideSize <= count {
                        if Int(buffer[p]) == c { at = p; break }
                        p += ClockVector.overrideSize
                    }
                    if let capture {
                        let oldHLC = at.map { buffer.loadUnaligned(fromByteOffset: $0 + 1, as: Int64.self) } ?? headerHLC
                        let oldSite = at.map { buffer.loadUnaligned(fromByteOffset: $0 + 9, as: Int32.self) } ?? headerSite
                        if k < argc {
                            ValueCodec.append(column: c, clock: (Int64(littleEndian: oldHLC), Int32(littleEndian: oldSite)),
                                              sqliteValue: argv[Int(k)], to: &capture.payload)
                        }
                    }
                    k += 1
                    let o: Int
                    if let at { o = at } else {
                        o = count
                        buffer[o] = UInt8(c)
                        count += ClockVector.overrideSize
                    }
                    buffer.storeBytes(of: hlc.littleEndian, toByteOffset: o + 1, as: Int64.self)
                    buffer.storeBytes(of: site.littleEndian, toByteOffset: o + 9, as: Int32.self)
                }
                m >>= 1
                c += 1
            }
            sqlite3_result_blob(ctx, raw, Int32(count), sqlite3_free)
        }, nil, nil, nil)
    }
}
