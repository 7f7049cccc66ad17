@preconcurrency import Crypto
import Foundation
import GRDBSQLite

/// A VFS shim over SQLite's default (unix) VFS that seals every page of an encrypted replica —
/// in the database file, its WAL and any rollback journal — with `PageCipher`, as SQLite's
/// `cksumvfs` adds checksums. Registered as the default VFS; a file whose database has no key
/// registered (`register(path:key:)`) passes through untouched, byte for byte.
///
/// An encrypted database file starts with `KeySlots.size` bytes of key slots that SQLite never
/// sees (its offsets are shifted), then its pages, each sealed in place with nonce and tag in the
/// page's reserved bytes. In a version-2 file the WAL is sealed whole (`WALLayout`): its header
/// and each frame's 24-byte header (page number, salts and SQLite's checksums, which SQLite
/// computes over the clear page) are sealed with the frame's page, and the file's id is bound
/// into every unit. Version-1 files keep WAL frame headers in clear and seal only the pages. A
/// rollback journal seals each page it copies. While an encrypted database is registered, SQLite may open no
/// temporary file (replicas set `temp_store = MEMORY`): a temporary file would hold clear pages.
/// Memory-mapped I/O is off for every file (the methods are version 2, without `xFetch`).
enum EncryptingVFS {
    static let pageSize = 4096
    static let headerSize = Int64(KeySlots.size)
    static let walHeader = 32
    static let walFrameHeader = 24
    // Extended result codes (macros Swift does not import).
    static let SQLITE_IOERR_SHORT_READ = SQLITE_IOERR | (2 << 8)
    static let SQLITE_IOERR_WRITE = SQLITE_IOERR | (3 << 8)
    static let SQLITE_IOERR_DATA = SQLITE_IOERR | (32 << 8)

    /// Keys by the database's full path (as SQLite names it), under `lock`.
    nonisolated(unsafe) private static var keys: [String: PageCipher] = [:]
    nonisolated(unsafe) private static var installed = false
    private static let lock = NSLock()

    nonisolated(unsafe) static var original: UnsafeMutablePointer<sqlite3_vfs>!
    nonisolated(unsafe) static var shim = sqlite3_vfs()
    nonisolated(unsafe) static var methods = sqlite3_io_methods()

    /// Installs the shim as SQLite's default VFS (once per process).
    static func install() {
        lock.withLock {
            guard !installed else { return }
            installed = true
            original = sqlite3_vfs_find(nil)
            shim = original.pointee
            shim.zName = UnsafePointer(strdup("fieldbook-aead"))
            shim.szOsFile = Int32(MemoryLayout<FileHeader>.size) + original.pointee.szOsFile
            shim.pAppData = nil
            shim.pNext = nil
            shim.xOpen = { _, name, file, flags, outFlags in EncryptingVFS.open(name, file!, flags, outFlags) }
            shim.xDelete = { _, name, sync in EncryptingVFS.original.pointee.xDelete(EncryptingVFS.original, name, sync) }
            shim.xAccess = { _, name, flags, out in EncryptingVFS.original.pointee.xAccess(EncryptingVFS.original, name, flags, out) }
            shim.xFullPathname = { _, name, n, out in EncryptingVFS.original.pointee.xFullPathname(EncryptingVFS.original, name, n, out) }
            shim.xDlOpen = { _, name in EncryptingVFS.original.pointee.xDlOpen(EncryptingVFS.original, name) }
            shim.xDlError = { _, n, msg in EncryptingVFS.original.pointee.xDlError(EncryptingVFS.original, n, msg) }
            shim.xDlSym = { _, h, sym in EncryptingVFS.original.pointee.xDlSym(EncryptingVFS.original, h, sym) }
            shim.xDlClose = { _, h in EncryptingVFS.original.pointee.xDlClose(EncryptingVFS.original, h) }
            shim.xRandomness = { _, n, out in EncryptingVFS.original.pointee.xRandomness(EncryptingVFS.original, n, out) }
            shim.xSleep = { _, us in EncryptingVFS.original.pointee.xSleep(EncryptingVFS.original, us) }
            shim.xCurrentTime = { _, t in EncryptingVFS.original.pointee.xCurrentTime(EncryptingVFS.original, t) }
            shim.xGetLastError = { _, n, msg in EncryptingVFS.original.pointee.xGetLastError(EncryptingVFS.original, n, msg) }
            shim.xCurrentTimeInt64 = { _, t in EncryptingVFS.original.pointee.xCurrentTimeInt64(EncryptingVFS.original, t) }
            shim.xSetSystemCall = { _, name, p in EncryptingVFS.original.pointee.xSetSystemCall(EncryptingVFS.original, name, p) }
            shim.xGetSystemCall = { _, name in EncryptingVFS.original.pointee.xGetSystemCall(EncryptingVFS.original, name) }
            shim.xNextSystemCall = { _, name in EncryptingVFS.original.pointee.xNextSystemCall(EncryptingVFS.original, name) }
            methods = makeMethods()
            sqlite3_vfs_register(&shim, 1)
        }
    }

    /// The full path SQLite will use for `path`.
    static func fullPath(_ path: String) -> String {
        install()
        let n = Int(original.pointee.mxPathname) + 1
        var buffer = [CChar](repeating: 0, count: n)
        guard original.pointee.xFullPathname(original, path, Int32(n), &buffer) == SQLITE_OK else { return path }
        return String(cString: buffer)
    }

    /// Makes SQLite seal the pages of the database at `path` (and its WAL and journal) under
    /// `key`, bound to `fileID` (empty for a version-1 file).
    static func register(path: String, key: SymmetricKey, fileID: [UInt8]) {
        let full = fullPath(path)
        lock.withLock { keys[full] = PageCipher(key: key, fileID: fileID) }
    }

    static func unregister(path: String) {
        let full = fullPath(path)
        lock.withLock { keys[full] = nil }
    }

    static func cipher(forPath path: String) -> PageCipher? {
        let full = fullPath(path)
        return lock.withLock { keys[full] }
    }

    static var anyRegistered: Bool { lock.withLock { !keys.isEmpty } }

    // MARK: Files

    /// What the shim keeps per open file, in front of the underlying VFS's file.
    struct FileHeader {
        var base: sqlite3_file
        var state: UnsafeMutableRawPointer?
    }

    enum Kind { case database, wal, journal, plain }

    final class FileState {
        let cipher: PageCipher?
        let kind: Kind
        /// This handle (the shim's file), to flush a held frame header from another call.
        var file: UnsafeMutablePointer<sqlite3_file>?
        /// A sealed WAL's frame header written alone, held until its page comes (`SealedWAL`).
        var pending: (unit: Int64, header: [UInt8])?
        /// The unit of a sealed WAL read whole last, opened, if no call came since (`SealedWAL`).
        var lastRead: (unit: Int64, bytes: [UInt8])?
        let lock = NSLock()
        init(cipher: PageCipher?, kind: Kind) {
            self.cipher = cipher
            self.kind = kind
        }
        /// A version-2 WAL: read and written in sealed units (`WALLayout`).
        var sealedWAL: Bool { kind == .wal && cipher?.sealsLog == true }
    }

    static func header(_ f: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<FileHeader> {
        UnsafeMutableRawPointer(f).assumingMemoryBound(to: FileHeader.self)
    }

    static func underlying(_ f: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        (UnsafeMutableRawPointer(f) + MemoryLayout<FileHeader>.size).assumingMemoryBound(to: sqlite3_file.self)
    }

    static func state(_ f: UnsafeMutablePointer<sqlite3_file>?) -> FileState {
        Unmanaged<FileState>.fromOpaque(header(f!).pointee.state!).takeUnretainedValue()
    }

    static func open(_ name: UnsafePointer<CChar>?, _ file: UnsafeMutablePointer<sqlite3_file>, _ flags: Int32,
                     _ outFlags: UnsafeMutablePointer<Int32>?) -> Int32 {
        header(file).pointee = FileHeader(base: sqlite3_file(pMethods: nil), state: nil)
        var kind = Kind.plain
        var database: String? = nil
        if flags & SQLITE_OPEN_MAIN_DB != 0, let name {
            kind = .database
            database = String(cString: name)
        } else if flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL) != 0, let name, let db = sqlite3_filename_database(name) {
            kind = flags & SQLITE_OPEN_WAL != 0 ? .wal : .journal
            database = String(cString: db)
        }
        let cipher = database.flatMap { d in lock.withLock { keys[d] } }
        if cipher == nil && kind == .plain && anyRegistered && flags & (SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TRANSIENT_DB | SQLITE_OPEN_SUPER_JOURNAL) != 0 {
            return SQLITE_CANTOPEN  // a temporary file would hold clear pages of an encrypted database
        }
        let sub = underlying(file)
        let rc = original.pointee.xOpen(original, name, sub, flags, outFlags)
        guard rc == SQLITE_OK else { return rc }
        let state = FileState(cipher: cipher, kind: cipher == nil ? .plain : kind)
        state.file = file
        header(file).pointee.state = Unmanaged.passRetained(state).toOpaque()
        header(file).pointee.base.pMethods = withUnsafePointer(to: &methods) { $0 }
        return SQLITE_OK
    }

    static func sub(_ f: UnsafeMutablePointer<sqlite3_file>?) -> (UnsafeMutablePointer<sqlite3_file>, sqlite3_io_methods) {
        let s = underlying(f!)
        return (s, s.pointee.pMethods.pointee)
    }

    // MARK: Reading and writing

    /// The sealed regions a byte range of a file touches: (file offset, page place).
    static func regions(_ state: FileState, offset: Int64, count: Int) -> [(offset: Int64, place: PageCipher.Place)] {
        let ps = Int64(pageSize)
        let end = offset + Int64(count)
        switch state.kind {
        case .plain:
            return []
        case .database:
            var out: [(Int64, PageCipher.Place)] = []
            var page = offset / ps
            while page * ps < end {
                out.append((page * ps, .page(page + 1)))
                page += 1
            }
            return out
        case .wal:
            let frame = ps + Int64(walFrameHeader)
            guard end > Int64(walHeader) else { return [] }
            var out: [(Int64, PageCipher.Place)] = []
            var k = max(0, (offset - Int64(walHeader)) / frame)
            while Int64(walHeader) + k * frame < end {
                let start = Int64(walHeader) + k * frame + Int64(walFrameHeader)
                if start < end && start + ps > offset { out.append((start, .log(kind: 0x57, offset: start))) }
                k += 1
            }
            return out
        case .journal:
            // A journal record's page is read and written on its own, exactly one page long.
            return count == pageSize ? [(offset, .log(kind: 0x4A, offset: offset))] : []
        }
    }

    /// Where the database's bytes start in the file.
    static func shift(_ state: FileState) -> Int64 { state.kind == .database ? headerSize : 0 }

    static func read(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeMutableRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        let (s, m) = sub(f)
        guard let cipher = st.cipher else { return m.xRead(s, buffer, count, offset) }
        if st.sealedWAL { return readWAL(f, buffer, count, offset) }
        let shift = shift(st)
        let regions = regions(st, offset: offset, count: Int(count))
        // Bytes outside sealed regions (WAL and journal headers) are read as they are.
        var rc = m.xRead(s, buffer, count, offset + shift)
        if rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ { return rc }
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { page.deallocate() }
        for (start, place) in regions {
            let r = m.xRead(s, page.baseAddress, Int32(pageSize), start + shift)
            if r == SQLITE_IOERR_SHORT_READ {
                // Beyond the end of the file: SQLite sees zeros, as it would without the shim.
                rc = SQLITE_IOERR_SHORT_READ
                let lo = max(start, offset), hi = min(start + Int64(pageSize), offset + Int64(count))
                if hi > lo { (buffer + Int(lo - offset)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(hi - lo)) }
                continue
            }
            if r != SQLITE_OK { return r }
            guard cipher.open(page, at: place) else { return SQLITE_IOERR_DATA }
            let lo = max(start, offset), hi = min(start + Int64(pageSize), offset + Int64(count))
            (buffer + Int(lo - offset)).copyMemory(from: page.baseAddress! + Int(lo - start), byteCount: Int(hi - lo))
        }
        return rc
    }

    static func write(_ f: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeRawPointer, _ count: Int32, _ offset: Int64) -> Int32 {
        let st = state(f)
        let (s, m) = sub(f)
        guard let cipher = st.cipher else { return m.xWrite(s, buffer, count, offset) }
        if st.sealedWAL { return writeWAL(f, buffer, count, offset) }
        let shift = shift(st)
        let regions = regions(st, offset: offset, count: Int(count))
        let end = offset + Int64(count)
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { page.deallocate() }
        var covered: [(Int64, Int64)] = []
        for (start, place) in regions {
            if start < offset || start + Int64(pageSize) > end {
                // Part of a page: read, open, patch (a database page only; SQLite writes WAL and
                // journal pages whole).
                guard st.kind == .database else { return SQLITE_IOERR_WRITE }
                let r = m.xRead(s, page.baseAddress, Int32(pageSize), start + shift)
                if r == SQLITE_IOERR_SHORT_READ {
                    page.initializeMemory(as: UInt8.self, repeating: 0)
                } else if r != SQLITE_OK {
                    return r
                } else if !cipher.open(page, at: place) {
                    return SQLITE_IOERR_DATA
                }
            }
            let lo = max(start, offset), hi = min(start + Int64(pageSize), end)
            (page.baseAddress! + Int(lo - start)).copyMemory(from: buffer + Int(lo - offset), byteCount: Int(hi - lo))
            // Page 1 says how many bytes per page SQLite leaves free (header byte 20): sealing a
            // page whose last bytes hold data would destroy it, so that is refused outright.
            if st.kind == .database, start == 0, page[20] < UInt8(PageCipher.reserve) { return SQLITE_IOERR_WRITE }
            do { try cipher.seal(page, at: place) } catch { return SQLITE_IOERR_WRITE }
            let r = m.xWrite(s, page.baseAddress, Int32(pageSize), start + shift)
            if r != SQLITE_OK { return r }
            covered.append((lo, hi))
        }
        // The rest (WAL frame headers, journal headers and page numbers) goes as it is.
        var at = offset
        for (lo, hi) in covered.sorted(by: { $0.0 < $1.0 }) + [(end, end)] {
            if lo > at {
                let r = m.xWrite(s, buffer + Int(at - offset), Int32(lo - at), at + shift)
                if r != SQLITE_OK { return r }
            }
            at = max(at, hi)
        }
        return SQLITE_OK
    }

    static func makeMethods() -> sqlite3_io_methods {
        var m = sqlite3_io_methods()
        m.iVersion = 2  // no xFetch: memory-mapped reads would bypass the shim
        m.xClose = { f in
            let h = EncryptingVFS.header(f!)
            let s = EncryptingVFS.underlying(f!)
            var rc = SQLITE_OK
            if let st = h.pointee.state {
                let state = Unmanaged<FileState>.fromOpaque(st).takeUnretainedValue()
                rc = state.lock.withLock { EncryptingVFS.flushLocked(state) }
            }
            if let methods = s.pointee.pMethods {
                let closed = methods.pointee.xClose(s)
                if rc == SQLITE_OK { rc = closed }
            }
            if let st = h.pointee.state { Unmanaged<FileState>.fromOpaque(st).release() }
            h.pointee.state = nil
            return rc
        }
        m.xRead = { f, b, n, o in EncryptingVFS.read(f, b!, n, o) }
        m.xWrite = { f, b, n, o in EncryptingVFS.write(f, b!, n, o) }
        m.xTruncate = { f, size in
            let held = EncryptingVFS.flush(f)
            guard held == SQLITE_OK else { return held }
            let (s, m) = EncryptingVFS.sub(f)
            let st = EncryptingVFS.state(f)
            if st.sealedWAL { return m.xTruncate(s, WALLayout.physicalSize(size)) }
            return m.xTruncate(s, size + EncryptingVFS.shift(st))
        }
        m.xSync = { f, flags in
            let held = EncryptingVFS.flush(f)
            guard held == SQLITE_OK else { return held }
            let (s, m) = EncryptingVFS.sub(f)
            return m.xSync(s, flags)
        }
        m.xFileSize = { f, out in
            let held = EncryptingVFS.flush(f)
            guard held == SQLITE_OK else { return held }
            let (s, m) = EncryptingVFS.sub(f)
            let rc = m.xFileSize(s, out)
            let st = EncryptingVFS.state(f)
            if rc == SQLITE_OK, let out {
                out.pointee = st.sealedWAL ? WALLayout.logicalSize(out.pointee) : max(0, out.pointee - EncryptingVFS.shift(st))
            }
            return rc
        }
        m.xLock = { f, l in let (s, m) = EncryptingVFS.sub(f); return m.xLock(s, l) }
        m.xUnlock = { f, l in
            let held = EncryptingVFS.flush(f)
            let (s, m) = EncryptingVFS.sub(f)
            let rc = m.xUnlock(s, l)
            return held == SQLITE_OK ? rc : held
        }
        m.xCheckReservedLock = { f, out in let (s, m) = EncryptingVFS.sub(f); return m.xCheckReservedLock(s, out) }
        m.xFileControl = { f, op, arg in
            let (s, m) = EncryptingVFS.sub(f)
            let st = EncryptingVFS.state(f)
            if op == SQLITE_FCNTL_SIZE_HINT, st.kind == .database, let arg {
                var hint = arg.assumingMemoryBound(to: Int64.self).pointee + EncryptingVFS.shift(st)
                return m.xFileControl(s, op, &hint)
            }
            if op == SQLITE_FCNTL_SIZE_HINT, st.sealedWAL, let arg {
                var hint = WALLayout.physicalSize(arg.assumingMemoryBound(to: Int64.self).pointee)
                return m.xFileControl(s, op, &hint)
            }
            if op == SQLITE_FCNTL_MMAP_SIZE, st.cipher != nil, let arg {
                arg.assumingMemoryBound(to: Int64.self).pointee = 0
                return SQLITE_OK
            }
            return m.xFileControl(s, op, arg)
        }
        m.xSectorSize = { f in let (s, m) = EncryptingVFS.sub(f); return m.xSectorSize(s) }
        m.xDeviceCharacteristics = { f in let (s, m) = EncryptingVFS.sub(f); return m.xDeviceCharacteristics(s) }
        m.xShmMap = { f, page, size, extend, out in let (s, m) = EncryptingVFS.sub(f); return m.xShmMap(s, page, size, extend, out) }
        m.xShmLock = { f, o, n, flags in let (s, m) = EncryptingVFS.sub(f); return m.xShmLock(s, o, n, flags) }
        m.xShmBarrier = { f in let (s, m) = EncryptingVFS.sub(f); m.xShmBarrier(s) }
        m.xShmUnmap = { f, del in let (s, m) = EncryptingVFS.sub(f); return m.xShmUnmap(s, del) }
        return m
    }
}
