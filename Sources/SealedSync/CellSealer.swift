import _CryptoExtras
@preconcurrency import Crypto
import FieldbookModel
import Foundation

/// Seals and opens one field value (a cell) with AES-256-GCM-SIV under its region's key.
///
/// The nonce is the first 12 bytes of SHA-256 of the associated data (`CellAddress`), which is
/// unique per write (a site never reuses a clock); GCM-SIV keeps even a repeated nonce (a
/// restored replica writing again under an old clock) from revealing more than that the two
/// cells are equal. So no nonce travels: a cell is the clear header (`SealedForm`), the
/// ciphertext of the padded value and the 16-byte tag.
///
/// The padded value is `tag (0 null, 1 integer, 2 real, 3 text) · length (varint) · bytes`,
/// then zeros up to a whole number of 16-byte blocks: a server learns a value's size only to
/// within 16 bytes.
public enum CellSealer {
    public static func seal(_ value: Value, at address: CellAddress, epoch: UInt32, key: SymmetricKey) throws(SealedSyncError) -> [UInt8] {
        let aad = address.associatedData(epoch: epoch)
        let plain = pad(value)
        do {
            let box = try AES.GCM._SIV.seal(plain, using: key, nonce: nonce(aad), authenticating: aad)
            // combined = nonce (not sent: derived again from the address) · ciphertext · tag.
            var out = SealedForm.header(epoch: epoch)
            out.reserveCapacity(out.count + box.combined.count - 12)
            out.append(contentsOf: box.combined.dropFirst(12))
            return out
        } catch {
            throw SealedSyncError(.malformed, "sealing \(address.table).\(address.field) of \(address.row) failed: \(error)")
        }
    }

    /// Opens a cell sealed for `address`; refuses one that was altered, moved or sealed under
    /// another key, or whose content is not a value.
    public static func open(_ cell: [UInt8], at address: CellAddress, keys: KeyRing) throws(SealedSyncError) -> Value {
        let what = "\(address.table).\(address.field) of \(address.row)"
        guard let header = SealedForm.header(of: cell) else {
            throw SealedSyncError(.malformed, "\(what) is not a sealed cell")
        }
        guard let key = keys.key(address.region, epoch: header.epoch) else {
            throw SealedSyncError(.missingKey, "\(what) is sealed under key epoch \(header.epoch) of region \(address.region), which this device does not hold")
        }
        let aad = address.associatedData(epoch: header.epoch)
        let plain: Data
        do {
            var combined = [UInt8]()
            combined.reserveCapacity(12 + cell.count - header.body)
            nonce(aad).withUnsafeBytes { combined.append(contentsOf: $0) }
            combined.append(contentsOf: cell[header.body...])
            plain = try AES.GCM._SIV.open(try AES.GCM._SIV.SealedBox(combined: combined), using: key, authenticating: aad)
        } catch {
            throw SealedSyncError(.doesNotOpen,
                "\(what) does not open: it was altered, or moved from another record, field, clock or region (\(error))")
        }
        guard let v = unpad([UInt8](plain)) else {
            throw SealedSyncError(.malformed, "\(what) opens but does not hold a value")
        }
        return v
    }

    static func nonce(_ aad: [UInt8]) -> AES.GCM._SIV.Nonce {
        let digest = SHA256.hash(data: aad)
        return digest.withUnsafeBytes { try! AES.GCM._SIV.Nonce(data: $0.prefix(12)) }  // 12 bytes: always a valid nonce
    }

    public static func pad(_ v: Value) -> [UInt8] {
        var out: [UInt8] = []
        func body(_ tag: UInt8, _ bytes: [UInt8]) {
            out.append(tag)
            var n = UInt64(bytes.count)
            while n >= 0x80 {
                out.append(UInt8(n & 0x7F) | 0x80)
                n >>= 7
            }
            out.append(UInt8(n))
            out.append(contentsOf: bytes)
        }
        switch v {
        case .null: body(0, [])
        case .integer(let i): body(1, (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: i) >> (8 * UInt64($0))) })
        case .real(let d): body(2, (0..<8).map { UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64($0))) })
        case .text(let s): body(3, Array(s.utf8))
        case .sealed(let b): body(4, b)  // never sealed twice by this code; kept total
        }
        let block = SealedForm.blockBytes
        out.append(contentsOf: repeatElement(0, count: (block - out.count % block) % block))
        return out
    }

    /// The value in a padded plaintext, or nil when it is not one (checked strictly: a device
    /// holding the key may still be hostile).
    static func unpad(_ p: [UInt8]) -> Value? {
        guard p.count >= SealedForm.blockBytes, p.count % SealedForm.blockBytes == 0 else { return nil }
        var n: UInt64 = 0
        var shift: UInt64 = 0
        var i = 1
        while true {
            guard i < p.count, shift <= 21 else { return nil }
            let b = p[i]
            n |= UInt64(b & 0x7F) << shift
            i += 1
            if b & 0x80 == 0 {
                if b == 0 && i > 2 { return nil }  // the one shortest varint only
                break
            }
            shift += 7
        }
        guard n <= UInt64(p.count - i) else { return nil }
        let end = i + Int(n)
        guard p[end...].allSatisfy({ $0 == 0 }), p.count - end < SealedForm.blockBytes else { return nil }
        let bytes = p[i..<end]
        func int64() -> UInt64 { bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
        switch p[0] {
        case 0: return n == 0 ? .null : nil
        case 1: return n == 8 ? .integer(Int64(bitPattern: int64())) : nil
        case 2:
            guard n == 8 else { return nil }
            let d = Double(bitPattern: int64())
            return d.isFinite ? .real(d) : nil
        case 3: return String(validating: bytes, as: UTF8.self).map(Value.text)
        default: return nil
        }
    }
}
