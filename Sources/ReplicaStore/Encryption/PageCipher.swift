@preconcurrency import Crypto
import Foundation

/// Seals and opens database pages with AES-256-GCM (swift-crypto): a fresh random nonce per
/// write, the page's identity (file kind and page number, or position) as associated data, and
/// nonce and tag in the page's last `reserve` bytes — the bytes SQLite leaves unused when a
/// database is created with `SQLITE_FCNTL_RESERVE_BYTES`.
///
/// Page layout: `ciphertext(pageSize - 28) | nonce(12) | tag(16)`.
///
/// In a file of key-slot version 2 the associated data also starts with the file's random id,
/// so that a page or frame sealed for one file never opens in another, and the WAL is sealed
/// whole (`sealsLog`): its header and every frame header travel inside the ciphertext (see
/// `WALLayout`), so that SQLite's salts and checksums — computed over clear pages — never
/// reach the disk.
struct PageCipher: Sendable {
    static let nonceSize = 12
    static let tagSize = 16
    static let reserve = nonceSize + tagSize

    let key: SymmetricKey
    /// The file's id (version 2), or empty (version 1: pages bound to their place only).
    let fileID: [UInt8]

    init(key: SymmetricKey, fileID: [UInt8] = []) {
        self.key = key
        self.fileID = fileID
    }

    /// Whether WAL headers and frame headers are sealed with their pages (version 2).
    var sealsLog: Bool { !fileID.isEmpty }

    /// What the associated data binds a sealed page to.
    enum Place {
        /// Page `n` (1-based) of the database file.
        case page(Int64)
        /// The page written at byte `offset` of a WAL or journal file (version 2: the WAL's
        /// header or frame at that physical offset).
        case log(kind: UInt8, offset: Int64)

        var bytes: [UInt8] {
            switch self {
            case .page(let n): return [0x50] + withUnsafeBytes(of: n.littleEndian, Array.init)
            case .log(let kind, let offset): return [kind] + withUnsafeBytes(of: offset.littleEndian, Array.init)
            }
        }
    }

    /// Seals `page` (whole page) in place.
    func seal(_ page: UnsafeMutableRawBufferPointer, at place: Place) throws {
        let body = page.count - Self.reserve
        let nonce = AES.GCM.Nonce()
        let box = try AES.GCM.seal(UnsafeRawBufferPointer(rebasing: page[0..<body]), using: key, nonce: nonce,
                                   authenticating: fileID + place.bytes)
        box.ciphertext.withUnsafeBytes { c in page.baseAddress!.copyMemory(from: c.baseAddress!, byteCount: body) }
        nonce.withUnsafeBytes { n in (page.baseAddress! + body).copyMemory(from: n.baseAddress!, byteCount: Self.nonceSize) }
        box.tag.withUnsafeBytes { t in (page.baseAddress! + body + Self.nonceSize).copyMemory(from: t.baseAddress!, byteCount: Self.tagSize) }
    }

    /// Opens `page` (whole page) in place; false when it does not authenticate (altered,
    /// moved, or sealed under another key). The reserved bytes read back as zeros.
    func open(_ page: UnsafeMutableRawBufferPointer, at place: Place) -> Bool {
        let body = page.count - Self.reserve
        guard body > 0,
              let nonce = try? AES.GCM.Nonce(data: UnsafeRawBufferPointer(rebasing: page[body..<(body + Self.nonceSize)])),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: UnsafeRawBufferPointer(rebasing: page[0..<body]),
                                               tag: UnsafeRawBufferPointer(rebasing: page[(body + Self.nonceSize)...])),
              let plain = try? AES.GCM.open(box, using: key, authenticating: fileID + place.bytes)
        else { return false }
        plain.withUnsafeBytes { p in page.baseAddress!.copyMemory(from: p.baseAddress!, byteCount: body) }
        (page.baseAddress! + body).initializeMemory(as: UInt8.self, repeating: 0, count: Self.reserve)
        return true
    }
}
