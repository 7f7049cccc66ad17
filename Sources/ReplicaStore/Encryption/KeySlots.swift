import _CryptoExtras
@preconcurrency import Crypto
import Foundation

/// The key slots at the start of an encrypted replica file (as LUKS and restic keep theirs):
/// one random 256-bit data key, wrapped once per passphrase with AES-256-GCM under a key derived
/// from that passphrase by scrypt (swift-crypto's `_CryptoExtras`). The slots share one salt and
/// one set of scrypt parameters, so that opening costs one derivation whatever slot matches.
///
/// Layout (`size` bytes, before the first database page; SQLite never sees it):
/// `magic "FBCRYPT1"(8) | version(1) | cipher(1) | kdf(1) | log2 N(1) | r(1) | p(1) | 0(2) |
/// salt(32) | file id(16)`, then `slotCount` slots of `slotSize` bytes at 64: `used(1) |
/// length(2, LE) | 0(1) | nonce(12) | ciphertext(length) | tag(16) | random padding`.
///
/// Version 2 (written since the seizure issue): every slot's sealed plaintext has the same
/// length (`slotPlaintext`, so the length field reads the same whatever a slot holds):
/// `kind(1) | payload length(1) | payload | zeros`, with kinds `0x11` (key) and `0x12` (duress);
/// the file id is random per file and bound into every page's and WAL frame's associated data
/// (`PageCipher`). Version 1 slots (`kind | payload`, kinds 1 and 2, as long as their payload)
/// still open. The associated data of slot i is the version-1 prefix (version byte 1, file id
/// zero) and i, so that a file keeps its slots when its pages move to version 2.
public struct KeySlots: Sendable, Equatable {
    public static let size = 4096
    static let magic = Array("FBCRYPT1".utf8)
    public static let slotCount = 8
    static let slotSize = 256
    static let maxPayload = slotSize - 4 - 12 - 16
    /// The sealed plaintext of every version-2 slot.
    static let slotPlaintext = maxPayload
    /// The format new files are written in.
    public static let currentVersion: UInt8 = 2

    /// What a slot holds.
    public enum Kind: UInt8, Sendable {
        case empty = 0
        /// The data key, wrapped under a passphrase.
        case key = 1
        /// A duress passphrase: opening with it destroys every slot.
        case duress = 2
    }

    struct Slot: Sendable, Equatable {
        var kind: Kind
        var nonce: [UInt8]
        var sealed: [UInt8]  // ciphertext + tag
    }

    /// scrypt cost: N = 2^logN, r, p. The default (2^17, 8, 1) uses 128 MiB and about 0.4 s here.
    public struct Cost: Sendable, Equatable {
        public var logN: UInt8
        public var r: UInt8
        public var p: UInt8
        public static let standard = Cost(logN: 17, r: 8, p: 1)
        /// Whether this cost is below the standard one (a file made under a test setting).
        public var isWeak: Bool { logN < Self.standard.logN || r < Self.standard.r }
        /// Memory scrypt uses, in bytes.
        public var memory: Int { 128 * Int(r) * (1 << Int(logN)) }

        public init(logN: UInt8, r: UInt8, p: UInt8) {
            self.logN = logN
            self.r = r
            self.p = p
        }

        /// The variable that lowers the cost of new key slots, for tests.
        public static let testVariable = "FIELDBOOK_KDF_LOGN"
        /// The second variable, named for what it does, without which a lowered cost is refused.
        public static let testConsentVariable = "FIELDBOOK_TESTING_WEAK_KDF"

        /// The cost of new key slots in this environment: the standard one; a higher one from
        /// `FIELDBOOK_KDF_LOGN`; a lower one only when `FIELDBOOK_TESTING_WEAK_KDF=1` says so
        /// too — one variable copied from a test script or a forum must not make passphrases a
        /// thousand times cheaper to guess, silently.
        public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Cost {
            guard let s = env[testVariable], !s.isEmpty else { return .standard }
            guard let n = UInt8(s), (10...22).contains(n) else {
                throw ReplicaError(.invalid, "\(testVariable)=\(s.prefix(20)): give a whole number from 10 to 22, or unset it (the standard is \(standard.logN))")
            }
            let cost = Cost(logN: n, r: 8, p: 1)
            if cost.isWeak && env[testConsentVariable] != "1" {
                throw ReplicaError(.invalid, "\(testVariable)=\(n) makes passphrases \(1 << Int(standard.logN - n)) times cheaper to guess; it is for tests only: unset it (a test also sets \(testConsentVariable)=1)")
            }
            return cost
        }
    }

    public var cost: Cost
    /// 1 (pages bound to their place only, WAL frame headers in clear) or 2 (see above).
    public internal(set) var version: UInt8 = currentVersion
    /// Random per file (version 2); zeros in version 1.
    public internal(set) var fileID: [UInt8]
    var salt: [UInt8]
    var slots: [Slot]
    /// What each slot holds, sealed under the data key at `mapOffset` (nonce, kinds, tag): only
    /// a holder of a real passphrase can tell a duress slot from a key slot.
    var sealedMap: [UInt8] = []
    static let mapOffset = 3072
    static let mapSize = 12 + slotCount + 16

    /// A new header: a fresh salt, no slot used.
    public init(cost: Cost = .standard) {
        self.cost = cost
        var rng = SystemRandomNumberGenerator()
        salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        fileID = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        slots = Array(repeating: Slot(kind: .empty, nonce: [], sealed: []), count: Self.slotCount)
    }

    /// Whether the file at `path` starts with the key slots of an encrypted replica (after
    /// finishing a header rewrite a crash interrupted).
    public static func isEncrypted(path: String) -> Bool {
        completeInterruptedWrite(path: path)
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: magic.count)).map { Array($0) == magic } ?? false
    }

    /// The file id pages are bound to: empty in version 1.
    var boundFileID: [UInt8] { version >= 2 ? fileID : [] }

    /// The first 64 bytes as written.
    var prefix: [UInt8] {
        Self.magic + [version, 1, 1, cost.logN, cost.r, cost.p, 0, 0] + salt + fileID
    }

    /// The first 64 bytes as version 1 wrote them: what the slots and the map are bound to.
    var boundPrefix: [UInt8] {
        Self.magic + [1, 1, 1, cost.logN, cost.r, cost.p, 0, 0] + salt + [UInt8](repeating: 0, count: 16)
    }

    func aad(_ i: Int) -> [UInt8] { boundPrefix + [UInt8(i)] }

    /// What the map of slot kinds is bound to: in format 2 the whole first 64 bytes as written,
    /// so that a changed format byte or file id is caught at unlock (`kinds(dataKey:)` is nil)
    /// instead of showing as every page damaged; in format 1 the version-1 prefix.
    var mapAAD: [UInt8] { (version >= 2 ? prefix : boundPrefix) + Array("map".utf8) }

    /// Whether a used slot's sealed length differs from the format-2 length (slots written by
    /// format 1 and kept by an upgrade): their length fields tell a duress slot from a key slot.
    public var hasUnevenSlots: Bool { slots.contains { $0.kind != .empty && $0.sealed.count != Self.slotPlaintext + 16 } }

    /// The key-encryption key of `passphrase` (the slow, memory-hard step).
    public func derive(_ passphrase: String) throws -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: salt, outputByteCount: 32,
                                            rounds: 1 << Int(cost.logN), blockSize: Int(cost.r), parallelism: Int(cost.p))
        } catch {
            throw ReplicaError(.database, "cannot derive the key of the passphrase: \(error)")
        }
    }

    /// What a passphrase opens.
    public enum Unlocked: Sendable {
        case key(SymmetricKey, slot: Int)
        case duress(payload: [UInt8], slot: Int)
    }

    /// Tries every slot with the key of a passphrase; nil when none opens.
    public func unlock(_ kek: SymmetricKey) -> Unlocked? {
        for (i, s) in slots.enumerated() where s.kind != .empty {
            guard s.sealed.count >= 16, let nonce = try? AES.GCM.Nonce(data: s.nonce),
                  let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: s.sealed.dropLast(16), tag: s.sealed.suffix(16)),
                  let plain = try? AES.GCM.open(box, using: kek, authenticating: aad(i)), let first = plain.first
            else { continue }
            let plainBytes = Array(plain)
            var kind = Kind(rawValue: first)
            var payload = Array(plainBytes.dropFirst())
            if plainBytes.count == Self.slotPlaintext, first & 0xF0 == 0x10 {
                // Version 2: kind | length | payload | zeros.
                let n = Int(plainBytes[1])
                guard n <= Self.slotPlaintext - 2 else { continue }
                kind = Kind(rawValue: first & 0x0F)
                payload = Array(plainBytes[2..<(2 + n)])
            }
            switch kind {
            case .key:
                guard payload.count == 32 else { continue }
                return .key(SymmetricKey(data: payload), slot: i)
            case .duress: return .duress(payload: payload, slot: i)
            case .empty, nil: continue
            }
        }
        return nil
    }

    /// What each slot holds, as the map sealed under `dataKey` says.
    public func kinds(dataKey: SymmetricKey) -> [Kind]? {
        guard sealedMap.count == Self.mapSize, let nonce = try? AES.GCM.Nonce(data: sealedMap[0..<12]),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: sealedMap[12..<(12 + Self.slotCount)], tag: sealedMap.suffix(16)),
              let plain = try? AES.GCM.open(box, using: dataKey, authenticating: mapAAD)
        else { return nil }
        return plain.map { Kind(rawValue: $0) ?? .empty }
    }

    /// Seals the map of what each slot holds under `dataKey`.
    public mutating func sealKinds(_ kinds: [Kind], dataKey: SymmetricKey) throws {
        let nonce = AES.GCM.Nonce()
        let box = try AES.GCM.seal(kinds.map(\.rawValue), using: dataKey, nonce: nonce, authenticating: mapAAD)
        sealedMap = Array(nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    /// How many slots are in use (passphrases; a duress slot cannot be told from the others).
    public var usedSlots: Int { slots.filter { $0.kind != .empty }.count }

    /// Puts `payload` (the data key, or a duress slot's content) in a free slot under `kek`;
    /// returns the slot's index.
    /// With `kinds` (the authenticated map), a slot the map calls empty is free even if it is
    /// used on disk (a decoy left by a duress wipe); without it, only slots empty on disk are.
    @discardableResult
    public mutating func add(_ kind: Kind, payload: [UInt8], kek: SymmetricKey, kinds: [Kind]? = nil) throws -> Int {
        let free = kinds.map { k in slots.indices.first { k.indices.contains($0) && k[$0] == .empty } }
            ?? slots.firstIndex(where: { $0.kind == .empty })
        guard let i = free else {
            throw ReplicaError(.invalid, "every key slot (\(Self.slotCount)) is in use; remove a passphrase first")
        }
        guard payload.count <= Self.slotPlaintext - 2 else { throw ReplicaError(.invalid, "a key slot holds at most \(Self.slotPlaintext - 2) bytes") }
        // Every slot the same length whatever it holds (format 2); a format-1 file keeps format-1
        // slots, which the release that wrote it can still open.
        var plain = [0x10 | kind.rawValue, UInt8(payload.count)] + payload
        plain += [UInt8](repeating: 0, count: Self.slotPlaintext - plain.count)
        if version < 2 { plain = [kind.rawValue] + payload }
        let nonce = AES.GCM.Nonce()
        let box = try AES.GCM.seal(plain, using: kek, nonce: nonce, authenticating: aad(i))
        slots[i] = Slot(kind: .key, nonce: Array(nonce), sealed: Array(box.ciphertext) + Array(box.tag))
        return i
    }

    public mutating func remove(slot i: Int) {
        slots[i] = Slot(kind: .empty, nonce: [], sealed: [])
    }

    /// Marks `count` more free slots used, each holding random bytes of a slot's length: no
    /// passphrase opens them, and on disk they cannot be told from slots that hold a key. After
    /// a duress wipe they keep the number of used slots as it was.
    mutating func addDecoys(_ count: Int) {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<count {
            guard let i = slots.firstIndex(where: { $0.kind == .empty }) else { return }
            slots[i] = Slot(kind: .key, nonce: (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) },
                            sealed: (0..<(Self.slotPlaintext + 16)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    /// The error for a format-2 header whose format byte or file id was changed: the slots
    /// open, the map bound to the whole header does not.
    static func alteredHeader(_ path: String) -> ReplicaError {
        ReplicaError(.damaged, "\(path) is damaged or was tampered with: the key slots' header (format or file id) was altered")
    }

    /// A header for a new file with the same salt and cost as this one (so that the key
    /// already derived from a passphrase serves it) and a new file id.
    func renewed() -> KeySlots {
        var h = KeySlots(cost: cost)
        h.salt = salt
        return h
    }

    /// The header's bytes; empty slots are random noise, so used and unused slots look alike.
    func encoded() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var out = prefix
        for s in slots {
            var b: [UInt8] = [s.kind.rawValue]
            let length = UInt16(max(0, s.sealed.count - 16))
            b += [UInt8(length & 0xFF), UInt8(length >> 8), 0]
            b += s.nonce.isEmpty ? (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) } : s.nonce
            b += s.sealed
            while b.count < Self.slotSize { b.append(UInt8.random(in: 0...255, using: &rng)) }
            if s.kind == .empty { b[0] = 0 }
            out += b
        }
        while out.count < Self.mapOffset { out.append(UInt8.random(in: 0...255, using: &rng)) }
        out += sealedMap.count == Self.mapSize ? sealedMap : (0..<Self.mapSize).map { _ in UInt8.random(in: 0...255, using: &rng) }
        while out.count < Self.size { out.append(UInt8.random(in: 0...255, using: &rng)) }
        return out
    }

    static func decode(_ b: [UInt8]) throws -> KeySlots {
        let damaged = ReplicaError(.damaged, "the key slots at the start of the file are damaged")
        guard b.count == size, Array(b[0..<8]) == magic else { throw ReplicaError(.notAReplica, "not an encrypted Fieldbook replica") }
        guard (1...2).contains(b[8]), b[9] == 1, b[10] == 1, (10...22).contains(b[11]), (1...32).contains(b[12]), (1...16).contains(b[13]) else { throw damaged }
        var h = KeySlots(cost: Cost(logN: b[11], r: b[12], p: b[13]))
        h.version = b[8]
        h.salt = Array(b[16..<48])
        h.fileID = Array(b[48..<64])
        if h.version == 1 && h.fileID != [UInt8](repeating: 0, count: 16) { throw damaged }
        for i in 0..<slotCount {
            let o = 64 + i * slotSize
            guard b[o] <= 1 else { throw damaged }
            if b[o] == 0 { continue }
            let kind = Kind.key  // used; what it holds is sealed
            let length = Int(b[o + 1]) | Int(b[o + 2]) << 8
            guard length <= maxPayload else { throw damaged }
            h.slots[i] = Slot(kind: kind, nonce: Array(b[(o + 4)..<(o + 16)]), sealed: Array(b[(o + 16)..<(o + 16 + length + 16)]))
        }
        h.sealedMap = Array(b[mapOffset..<(mapOffset + mapSize)])
        return h
    }

    /// Reads the header of the replica at `path`.
    public static func read(path: String) throws -> KeySlots {
        completeInterruptedWrite(path: path)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ReplicaError(.notAReplica, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: size)
        let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw ReplicaError(.damaged, "\(path) is damaged: too short to hold its key slots (truncated?)") }
        return try decode(b)
    }

    /// Writes the header over the start of `path` and waits until it is on disk.
    public func write(path: String) throws {
        try Self.overwrite(path: path, with: encoded())
    }

    /// Where a header being rewritten in place is kept until it is on disk in place.
    static func journal(_ path: String) -> String { path + "-keyslots" }

    /// Rewrites the header of an existing file so that a crash or power cut midway leaves the
    /// old header or the new one, never a torn mix (in which no passphrase would open the file):
    /// the new header is first written whole beside the file (0600, synced, renamed into place,
    /// the directory synced), then over the start of the file, then the copy is removed.
    /// `completeInterruptedWrite` finishes the job at the next read after a crash.
    public func replace(path: String) throws {
        let bytes = encoded()
        let journal = Self.journal(path), temp = journal + ".tmp"
        Self.scrubAndRemove(temp)
        try Self.overwrite(path: temp, with: bytes)
        guard rename(temp, journal) == 0 else { throw ReplicaError(.database, "cannot write \(journal): \(String(cString: strerror(errno)))") }
        Self.syncDirectory(of: path)
        try Self.overwrite(path: path, with: bytes, create: false)
        Self.scrubAndRemove(journal)
        Self.syncDirectory(of: path)
    }

    /// Overwrites a copy of key slots before it is unlinked: a header left in free blocks would
    /// open the replica with any passphrase it held, after a wipe too.
    static func scrubAndRemove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return }
        _ = Scrub.overwrite(path: path)
        unlink(path)
    }

    /// Finishes a header rewrite a crash interrupted: a whole header kept beside the file is
    /// written over its start — only when it is a regular file of ours of exactly a header's
    /// size, the file at `path` is an encrypted replica already, and both carry the same file
    /// id (a copy left by another file, or planted, is left alone and never applied). A partial
    /// copy (never renamed into place) is scrubbed and removed.
    static func completeInterruptedWrite(path: String) {
        let journal = journal(path)
        var st = stat()
        if lstat(journal + ".tmp", &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == getuid() { scrubAndRemove(journal + ".tmp") }
        guard lstat(journal, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == getuid(), st.st_size == off_t(size) else { return }
        let fd = open(journal, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        close(fd)
        let target = open(path, O_RDONLY | O_NONBLOCK)
        guard target >= 0 else { return }
        var head = [UInt8](repeating: 0, count: 64)
        let m = head.withUnsafeMutableBytes { pread(target, $0.baseAddress, 64, 0) }
        close(target)
        guard n == size, m == 64, Array(bytes[0..<8]) == magic, Array(head[0..<8]) == magic,
              bytes[48..<64] == head[48..<64], (try? decode(bytes)) != nil else { return }
        if (try? overwrite(path: path, with: bytes, create: false)) != nil { scrubAndRemove(journal) }
    }

    static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Overwrites the header region with random bytes and waits until it is on disk: no
    /// passphrase opens the file afterwards.
    public static func destroy(path: String) throws {
        var rng = SystemRandomNumberGenerator()
        try overwrite(path: path, with: (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    static func overwrite(path: String, with bytes: [UInt8], create: Bool = true) throws {
        let fd = open(path, O_RDWR | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else { throw ReplicaError(.database, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes.count, 0) }
        guard n == bytes.count, fsync(fd) == 0 else {
            throw ReplicaError(.database, "cannot write the key slots of \(path): \(String(cString: strerror(errno)))")
        }
    }
}
