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

    /// What reading one unit found.
    enum UnitRead {
        case opened([UInt8])
        /// Beyond the end of the file, or cut short by it.
        case beyondEnd
        /// There, whole, but it does not open.
        case failed
        case error(Int32)
    }

    /// Reads a unit of a sealed WAL and opens it: its logical bytes with the reserve zeroed.
    static func readUnit(_ st: FileState, _ u: WALLayout.Unit, _ s: UnsafeMutablePointer<sqlite3_file>,
                         _ m: sqlite3_io_methods) -> UnitRead {
        var buf = [UInt8](repeating: 0, count: u.physicalLength)
        let r = buf.withUnsafeMutableBytes { m.xRead(s, $0.baseAddress, Int32(u.physicalLength), u.physical) }
        if r == SQLITE_IOERR_SHORT_READ { return .beyondEnd }
        guard r == SQLITE_OK else { return .error(r) }
        return buf.withUnsafeMutableBytes { st.cipher!.open($0, at: u.place) } ? .opened(buf) : .failed
    }

    /// Whether a frame that does not open is the torn end of the log — a write a crash cut —
    /// rather than damage: nothing follows it but the end of the file, other units that do not
    /// open, or frames of an earlier WAL generation (other salts than the header's), so that no
    /// frame of the current generation lies beyond it. SQLite then ends the log there, as it
    /// does at a frame whose checksum fails. A frame moved or spliced into the middle of the
    /// log, with frames of the current generation after it, is damage.
    static func isTornEnd(_ st: FileState, _ u: WALLayout.Unit, _ s: UnsafeMutablePointer<sqlite3_file>, _ m: sqlite3_io_methods) -> Bool {
        let layout = walLayout()
        if u.index == 0 {
            // The header is one 60-byte write inside one sector: torn only while no frame follows.
            if case .beyondEnd = readUnit(st, layout.unit(1), s, m) { return true }
            return false
        }
        guard case let .opened(header) = readUnit(st, layout.unit(0), s, m) else { return false }
        let salts = header[16..<24]
        var k = u.index + 1
        while true {
            switch readUnit(st, layout.unit(k), s, m) {
            case .beyondEnd: return true
            case .error: return false
            case .failed: k += 1
            case let .opened(frame): return frame[8..<16] != salts
            }
        }
    }

    static func writeUnit(_ st: FileState, _ u: WALLayout.Unit, _ bytes: inout [UInt8], _ s: UnsafeMutablePointer<sqlite3_file>,
                          _ m: sqlite3_io_methods) -> Int32 {
        do { try bytes.withUnsafeMutableBytes { try st.cipher!.seal($0, at: u.place) } } catch { return SQLITE_IOERR_WRITE }
        return bytes.withUnsafeBytes { m.xWrite(s, $0.baseAddress, Int32(u.physicalLength), u.physical) }
    }

    /// Reads logical bytes of a sealed WAL. A whole unit read (the header, or a whole frame, as
    /// SQLite's recovery reads them) that does not open is read as zeros when it is the torn end
    /// of the log (`isTornEnd`), else it is damage; a page read alone (a committed frame, as
    /// readers and checkpoints read them) that does not open is always damage.
    static func readWAL(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeMutableRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        return st.lock.withLock { () -> Int32 in
            let held = flushLocked(st)
            guard held == SQLITE_OK else { return held }
            return readWALLocked(st, buffer, count, offset)
        }
    }

    static func readWALLocked(_ st: FileState, _ buffer: UnsafeMutableRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let (s, m) = sub(st.file)
        var rc = SQLITE_OK
        let end = offset + Int64(count)
        for u in walLayout().units(offset: offset, count: Int(count)) {
            let lo = max(u.start, offset), hi = min(u.start + Int64(u.length), end)
            let whole = lo == u.start && hi == u.start + Int64(u.length)
            var bytes: [UInt8]? = nil
            st.lastRead = nil
            switch readUnit(st, u, s, m) {
            case let .opened(b):
                bytes = b
                if whole { st.lastRead = (u.index, b) }
            case .beyondEnd: rc = SQLITE_IOERR_SHORT_READ
            case let .error(r): return r
            case .failed:
                guard whole || u.index == 0, isTornEnd(st, u, s, m) else { return SQLITE_IOERR_DATA }
                bytes = [UInt8](repeating: 0, count: u.physicalLength)
            }
            if let bytes {
                bytes.withUnsafeBytes { b in
                    (buffer + Int(lo - offset)).copyMemory(from: b.baseAddress! + Int(lo - u.start), byteCount: Int(hi - lo))
                }
            } else {
                // Beyond the end of the file: zeros, as SQLite's own VFS gives.
                (buffer + Int(lo - offset)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(hi - lo))
            }
        }
        return rc
    }

    /// Writes logical bytes of a sealed WAL. A unit written whole is sealed as it is. Written in
    /// parts, a frame would be read, opened and sealed again for each part; instead:
    /// - a frame header rewritten right after its unit was read whole (SQLite's checksum
    ///   rewrite reads each frame, then writes its header) is patched into what was read and
    ///   sealed at once;
    /// - a new frame's header (SQLite writes it, then the page, in two calls from one thread) is
    ///   held until its page comes, so the frame is sealed once; any other call on this file puts
    ///   it on disk first (read, patch, seal), and nothing else of SQLite's happens between the
    ///   two writes;
    /// - any other part (a page rewritten alone) is read, opened, patched and sealed at once.
    static func writeWAL(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        return st.lock.withLock { writeWALLocked(st, buffer, count, offset) }
    }

    static func writeWALLocked(_ st: FileState, _ buffer: UnsafeRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let (s, m) = sub(st.file)
        let units = walLayout().units(offset: offset, count: Int(count))
        let read = st.lastRead
        st.lastRead = nil
        if units.count == 1, let u = units.first, u.index > 0 {
            let data = Array(UnsafeRawBufferPointer(start: buffer, count: Int(count)))
            if offset == u.start && Int(count) == WALLayout.frameHeader {
                let held = flushLocked(st)
                guard held == SQLITE_OK else { return held }
                if let read, read.unit == u.index {
                    var bytes = read.bytes
                    bytes.replaceSubrange(0..<WALLayout.frameHeader, with: data)
                    return writeUnit(st, u, &bytes, s, m)
                }
                st.pending = (u.index, data)
                return SQLITE_OK
            }
            if let p = st.pending, p.unit == u.index, offset == u.start + Int64(WALLayout.frameHeader), Int(count) == u.length - WALLayout.frameHeader {
                st.pending = nil
                var bytes = p.header + data
                if bytes[(u.length - PageCipher.reserve)...].contains(where: { $0 != 0 }) { return SQLITE_IOERR_WRITE }
                return writeUnit(st, u, &bytes, s, m)
            }
        }
        let held = flushLocked(st)
        guard held == SQLITE_OK else { return held }
        return patch(st, units, buffer, count, offset)
    }

    /// Puts a held frame header on disk (read, patch, seal the unit); kept held if that fails,
    /// so the error is the caller's and nothing is dropped. Call with `st.lock` held.
    static func flushLocked(_ st: FileState) -> Int32 {
        guard let p = st.pending else { return SQLITE_OK }
        let u = walLayout().unit(p.unit)
        let rc = p.header.withUnsafeBytes { patch(st, [u], $0.baseAddress!, Int32(p.header.count), u.start) }
        if rc == SQLITE_OK { st.pending = nil }
        return rc
    }

    /// Puts the held frame header of `f` (a sealed WAL) on disk; nothing for other files.
    static func flush(_ f: UnsafeMutablePointer<sqlite3_file>?) -> Int32 {
        let st = state(f)
        guard st.sealedWAL else { return SQLITE_OK }
        return st.lock.withLock {
            st.lastRead = nil
            return flushLocked(st)
        }
    }

    /// Writes `count` logical bytes at `offset` over `units`, each patched into what is there.
    static func patch(_ st: FileState, _ units: [WALLayout.Unit], _ buffer: UnsafeRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let (s, m) = sub(st.file)
        let end = offset + Int64(count)
        for u in units {
            let lo = max(u.start, offset), hi = min(u.start + Int64(u.length), end)
            var bytes: [UInt8]
            if lo == u.start && hi == u.start + Int64(u.length) {
                bytes = [UInt8](repeating: 0, count: u.physicalLength)
            } else {
                // What is there is patched; a unit that does not open (torn by a crash, or stale)
                // is written over from zeros — SQLite's checksum, over header and page, never
                // takes a frame half of which it did not write.
                switch readUnit(st, u, s, m) {
                case let .opened(old): bytes = old
                case let .error(r): return r
                case .beyondEnd, .failed: bytes = [UInt8](repeating: 0, count: u.physicalLength)
                }
            }
            bytes.withUnsafeMutableBytes { b in
                (b.baseAddress! + Int(lo - u.start)).copyMemory(from: buffer + Int(lo - offset), byteCount: Int(hi - lo))
            }
            // A frame's page keeps its last 28 bytes free (SQLite's reserve) for nonce and tag:
            // a page that uses them would lose data, so it is refused (as for the database file).
            if u.index > 0, hi == u.start + Int64(u.length), bytes[(u.length - PageCipher.reserve)...].contains(where: { $0 != 0 }) {
                return SQLITE_IOERR_WRITE
            }
            let r = writeUnit(st, u, &bytes, s, m)
            guard r == SQLITE_OK else { return r }
        }
        return SQLITE_OK
    }
}
