import Foundation
import GRDBSQLite

/// Where the logical bytes SQLite sees of a version-2 WAL lie in the file, sealed: the 32-byte
/// WAL header is one unit of 60 bytes (its ciphertext, nonce and tag) at 0; frame k (its
/// 24-byte header and its page, 4120 bytes) is one unit of 4120 bytes at 60 + k × 4120 — the
/// page's 28 reserved bytes hold the nonce and tag, so a frame keeps its size. Salts, page
/// numbers and SQLite's checksums are inside the ciphertext; the associated data binds the
/// file id and the unit's offset, so a unit moved within the file, or from another file, does
/// not open.
struct WALLayout {
    static let header = 32
    static let frameHeader = 24
    static let shift = Int64(PageCipher.reserve)
    let pageSize: Int

    var frame: Int { Self.frameHeader + pageSize }

    struct Unit {
        var index: Int64
        /// Logical start and length (as SQLite sees the WAL).
        var start: Int64
        var length: Int
        /// Where it lies in the file, and its length there.
        var physical: Int64
        var physicalLength: Int
        var place: PageCipher.Place { .log(kind: index == 0 ? 0x48 : 0x57, offset: physical) }
    }

    func unit(_ index: Int64) -> Unit {
        if index == 0 { return Unit(index: 0, start: 0, length: Self.header, physical: 0, physicalLength: Self.header + Int(Self.shift)) }
        let start = Int64(Self.header) + (index - 1) * Int64(frame)
        return Unit(index: index, start: start, length: frame, physical: start + Self.shift, physicalLength: frame)
    }

    /// The units a logical byte range touches.
    func units(offset: Int64, count: Int) -> [Unit] {
        let end = offset + Int64(count)
        guard count > 0 else { return [] }
        var out: [Unit] = []
        var i: Int64 = offset < Int64(Self.header) ? 0 : 1 + (offset - Int64(Self.header)) / Int64(frame)
        while true {
            let u = unit(i)
            if u.start >= end { break }
            out.append(u)
            i += 1
        }
        return out
    }

    /// The logical size of a WAL whose file holds `physical` bytes.
    static func logicalSize(_ physical: Int64) -> Int64 { physical <= 0 ? 0 : max(0, physical - shift) }
    static func physicalSize(_ logical: Int64) -> Int64 { logical <= 0 ? 0 : logical + shift }
}

extension EncryptingVFS {
    static func walLayout() -> WALLayout { WALLayout(pageSize: pageSize) }

    /// Reads a unit of a sealed WAL and opens it: its logical bytes (with the reserve zeroed),
    /// nil beyond the end of the file. A unit that does not open is damage — unless it is the
    /// file's last and cut short or torn by a crash while being written, which SQLite then reads
    /// as no frame at all.
    static func readUnit(_ st: FileState, _ u: WALLayout.Unit, _ s: UnsafeMutablePointer<sqlite3_file>,
                         _ m: sqlite3_io_methods) -> (rc: Int32, bytes: [UInt8]?) {
        var buf = [UInt8](repeating: 0, count: u.physicalLength)
        let r = buf.withUnsafeMutableBytes { m.xRead(s, $0.baseAddress, Int32(u.physicalLength), u.physical) }
        if r == SQLITE_IOERR_SHORT_READ { return (SQLITE_OK, nil) }
        guard r == SQLITE_OK else { return (r, nil) }
        let opened = buf.withUnsafeMutableBytes { st.cipher!.open($0, at: u.place) }
        if opened { return (SQLITE_OK, buf) }
        var size: Int64 = 0
        if m.xFileSize(s, &size) == SQLITE_OK, u.physical + Int64(u.physicalLength) >= size {
            return (SQLITE_OK, [UInt8](repeating: 0, count: u.physicalLength))
        }
        return (SQLITE_IOERR_DATA, nil)
    }

    static func writeUnit(_ st: FileState, _ u: WALLayout.Unit, _ bytes: inout [UInt8], _ s: UnsafeMutablePointer<sqlite3_file>,
                          _ m: sqlite3_io_methods) -> Int32 {
        do { try bytes.withUnsafeMutableBytes { try st.cipher!.seal($0, at: u.place) } } catch { return SQLITE_IOERR_WRITE }
        return bytes.withUnsafeBytes { m.xWrite(s, $0.baseAddress, Int32(u.physicalLength), u.physical) }
    }

    static func readWAL(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeMutableRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        let (s, m) = sub(f)
        var rc = SQLITE_OK
        let end = offset + Int64(count)
        for u in walLayout().units(offset: offset, count: Int(count)) {
            let lo = max(u.start, offset), hi = min(u.start + Int64(u.length), end)
            let (r, bytes) = readUnit(st, u, s, m)
            guard r == SQLITE_OK else { return r }
            if let bytes {
                bytes.withUnsafeBytes { b in
                    (buffer + Int(lo - offset)).copyMemory(from: b.baseAddress! + Int(lo - u.start), byteCount: Int(hi - lo))
                }
            } else {
                // Beyond the end of the file: zeros, as SQLite's own VFS gives.
                (buffer + Int(lo - offset)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(hi - lo))
                rc = SQLITE_IOERR_SHORT_READ
            }
        }
        return rc
    }

    /// Writes logical bytes of a sealed WAL. A unit written whole is sealed as it is; a unit
    /// written in part (SQLite writes a frame's header, then its page, and rewrites a header or
    /// a page alone) is read, opened, patched and sealed again at once, so that nothing waits
    /// in memory: what SQLite wrote is in the file when the call returns.
    static func writeWAL(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        let (s, m) = sub(f)
        let end = offset + Int64(count)
        for u in walLayout().units(offset: offset, count: Int(count)) {
            let lo = max(u.start, offset), hi = min(u.start + Int64(u.length), end)
            var bytes: [UInt8]
            if lo == u.start && hi == u.start + Int64(u.length) {
                bytes = [UInt8](repeating: 0, count: u.physicalLength)
            } else {
                let (r, old) = readUnit(st, u, s, m)
                guard r == SQLITE_OK else { return r }
                bytes = old ?? [UInt8](repeating: 0, count: u.physicalLength)
            }
            bytes.withUnsafeMutableBytes { b in
                (b.baseAddress! + Int(lo - u.start)).copyMemory(from: buffer + Int(lo - offset), byteCount: Int(hi - lo))
            }
            let r = writeUnit(st, u, &bytes, s, m)
            guard r == SQLITE_OK else { return r }
        }
        return SQLITE_OK
    }
}
