import Foundation

/// One entry of the change log: a write to one row.
struct LogEntry: Equatable {
    var table: Int64
    var rowID: String
    var op: Int64
    /// The row's causal length after the write.
    var cl: Int64
    var hlc: Int64
    var site: Int32
    /// The columns the write set (bit i = column i); 0 for a delete.
    var fields: Int64
    /// The values the write overwrote, with their clocks (`ValueCodec`), for history.
    var payload: [UInt8]
    /// Where the change came from: 0 for a local write, else the peer it was received from
    /// (so that it is not sent back there).
    var origin: Int64 = 0
}

/// The change log is stored in chunks: each `_fb_log` row holds up to `chunkSize` entries in
/// one blob. Writes buffer entries in memory and flush them in the same transaction, so a
/// change costs a buffer append instead of a row of its own. The chunk's `seq` is the cursor
/// of "changes since N".
///
/// Entry encoding: varint table, varint id length + UTF-8 id, u8 op, then varint-zigzag cl, hlc,
/// site and fields, varint payload length + payload, varint origin.
enum ChangeLog {
    static let chunkSize = 512

    static func append(_ e: LogEntry, to out: inout [UInt8]) {
        var id = e.rowID
        id.withUTF8 { idBytes in
            // The fixed part (at most 10 + 10 + 1 + 4 × 10 bytes) is assembled on the stack.
            withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { p in
                var n = 0
                func put(_ v: UInt64) {
                    var x = v
                    while x >= 0x80 {
                        p[n] = UInt8(truncatingIfNeeded: x) | 0x80
                        n += 1
                        x >>= 7
                    }
                    p[n] = UInt8(x)
                    n += 1
                }
                put(UInt64(e.table))
                put(UInt64(idBytes.count))
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<n]))
                out.append(contentsOf: idBytes)
                n = 0
                p[n] = UInt8(truncatingIfNeeded: e.op)
                n += 1
                put(zigzag(e.cl))
                put(zigzag(e.hlc))
                put(zigzag(Int64(e.site)))
                put(UInt64(bitPattern: e.fields))
                put(UInt64(e.payload.count))
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<n]))
            }
        }
        out.append(contentsOf: e.payload)
        appendVarint(UInt64(bitPattern: e.origin), to: &out)
    }

    /// Calls `body` for each entry of a chunk; `wantPayload` decides (from table and id)
    /// whether the payload is decoded. A chunk is read from the file, so every length and
    /// integer in it is checked before it is used: one that runs past the chunk, does not fit
    /// its type, or leaves the chunk half-read is damage (`.damaged`, naming the chunk and the
    /// byte) — never a trap, and never a silent end that a cursor would then pass for good.
    static func forEach(in chunk: UnsafeRawBufferPointer, seq: Int64 = 0, wantPayload: (Int64, String) -> Bool = { _, _ in false },
                        _ body: (LogEntry) throws -> Void) throws {
        var p = 0
        let n = chunk.count
        func damaged(_ what: String) -> ReplicaError {
            ReplicaError(.damaged, "the replica is damaged: change log chunk \(seq) has \(what) at byte \(p)")
        }
        func varint(_ what: String) throws -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while p < n {
                let b = chunk[p]
                p += 1
                guard shift < 64, shift < 63 || b & 0x7F <= 1 else { throw damaged("an over-long \(what)") }
                v |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
            throw damaged("a \(what) cut short")
        }
        func length(_ what: String) throws -> Int {
            let v = try varint(what)
            guard v <= UInt64(n - p) else { throw damaged("a \(what) of \(v) bytes past its end (\(n - p) left)") }
            return Int(v)
        }
        while p < n {
            guard let table = Int64(exactly: try varint("table")) else { throw damaged("a table index out of range") }
            let len = try length("row id length")
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: chunk[p..<(p + len)]), as: UTF8.self)
            p += len
            guard p < n else { throw damaged("an entry cut short") }
            let op = Int64(chunk[p])
            p += 1
            let cl = try varint("causal length"), hlc = try varint("clock"), site = try varint("site"), fields = try varint("field mask")
            let plen = try length("payload length")
            var payload: [UInt8] = []
            if plen > 0 && wantPayload(table, id) { payload = Array(chunk[p..<(p + plen)]) }
            p += plen
            let origin = try varint("origin")
            guard let siteIndex = Int32(exactly: unzigzag(site)) else { throw damaged("a site index out of range") }
            try body(LogEntry(table: table, rowID: id, op: op, cl: unzigzag(cl), hlc: unzigzag(hlc),
                              site: siteIndex, fields: Int64(bitPattern: fields), payload: payload,
                              origin: Int64(bitPattern: origin)))
        }
    }

    static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

    static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var x = v
        while x >= 0x80 {
            out.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        out.append(UInt8(x))
    }
}
