/// The clear part of a sealed cell: what a server may read of a value it keeps.
///
/// A cell is `version (1 byte, 1) · epoch (unsigned varint, 1 to 2^32-1) · ciphertext · tag (16 bytes)`,
/// the ciphertext a whole number of 16-byte blocks (the value is padded). The epoch names the
/// region key it was sealed under; the region, table, row, field, clock and site are bound to it
/// as associated data and never travel inside it. The sealing itself (AES-256-GCM-SIV) lives in
/// the SealedSync module; docs/PROTOCOL.md, "Sealed values", is the exact form.
public enum SealedForm {
    public static let version: UInt8 = 1
    public static let tagBytes = 16
    public static let blockBytes = 16
    /// The smallest cell: version, a one-byte epoch, one padded block and the tag.
    public static let minCellBytes = 2 + 16 + 16

    /// The key epoch of `cell` and where its ciphertext starts, or nil when the bytes are not a
    /// cell of this version (bad version, epoch 0 or over 32 bits, wrong length).
    public static func header(of cell: [UInt8]) -> (epoch: UInt32, body: Int)? {
        guard cell.count >= minCellBytes, cell.count <= WireLimits.maxSealedBytes, cell[0] == version else { return nil }
        var epoch: UInt64 = 0
        var shift: UInt64 = 0
        var i = 1
        while true {
            guard i < cell.count, shift <= 28 else { return nil }
            let b = cell[i]
            epoch |= UInt64(b & 0x7F) << shift
            i += 1
            if b & 0x80 == 0 { break }
            shift += 7
        }
        guard (1...UInt64(UInt32.max)).contains(epoch) else { return nil }
        let sealed = cell.count - i
        guard sealed >= blockBytes + tagBytes, (sealed - tagBytes) % blockBytes == 0 else { return nil }
        return (UInt32(epoch), i)
    }

    /// The header bytes for `epoch`.
    public static func header(epoch: UInt32) -> [UInt8] {
        var out: [UInt8] = [version]
        var v = epoch
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }
}
