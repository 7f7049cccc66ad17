import Foundation

/// The clocks of one row, as stored in its `_clocks` column.
///
/// Decoded: entry 0 is the existence change (the write that set the causal length), entry
/// i+1 is column i; HLC 0 means "no version". Encoded compactly: a 12-byte header (HLC i64 LE,
/// site i32 LE) that is the existence clock and the default clock of every column, followed by
/// 13-byte overrides (u8 column, HLC i64 LE, site i32 LE) for the columns whose clock differs.
/// A freshly inserted row therefore carries 12 bytes of clocks.
struct ClockVector: Equatable {
    static let headerSize = 12
    static let overrideSize = 13
    var hlc: [Int64]
    var site: [Int32]

    init(count: Int) {
        hlc = Array(repeating: 0, count: count)
        site = Array(repeating: 0, count: count)
    }

    init(bytes raw: UnsafeRawBufferPointer, count: Int) {
        self.init(count: count)
        guard raw.count >= Self.headerSize else { return }
        let h = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let s = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: Int32.self))
        for i in 0..<count {
            hlc[i] = h
            site[i] = s
        }
        var p = Self.headerSize
        while p + Self.overrideSize <= raw.count {
            let c = Int(raw[p]) + 1
            if c < count {
                hlc[c] = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: p + 1, as: Int64.self))
                site[c] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: p + 9, as: Int32.self))
            }
            p += Self.overrideSize
        }
    }

    init(data: Data, count: Int) {
        self = data.withUnsafeBytes { ClockVector(bytes: $0, count: count) }
    }

    /// The compact encoding.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize)
        Self.appendClock(hlc[0], site[0], to: &out)
        for i in 1..<hlc.count where hlc[i] != hlc[0] || site[i] != site[0] {
            out.append(UInt8(i - 1))
            Self.appendClock(hlc[i], site[i], to: &out)
        }
        return out
    }

    /// The encoding of a row whose existence and columns all carry one clock.
    static func uniform(hlc: Int64, site: Int32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize)
        appendClock(hlc, site, to: &out)
        return out
    }

    static func appendClock(_ h: Int64, _ s: Int32, to out: inout [UInt8]) {
        var x = UInt64(bitPattern: h)
        for _ in 0..<8 {
            out.append(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
        var y = UInt32(bitPattern: s)
        for _ in 0..<4 {
            out.append(UInt8(truncatingIfNeeded: y))
            y >>= 8
        }
    }
}
