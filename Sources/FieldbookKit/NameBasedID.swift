import Crypto
import Foundation

/// Record ids derived from what identifies a record in an import (RFC 9562 version 5: SHA-1 of a
/// namespace and a name), so that one CSV imported on two laptops makes the same ids, and the
/// two imports sync into one set of records instead of two.
enum NameBasedID {
    /// Fieldbook's namespace for imported records (a random UUID, fixed forever).
    static let namespace = UUID(uuidString: "8c1f4b2e-5d3a-4e6b-9a7c-2f0d1e3b4a59")!

    static func make(_ name: String) -> String {
        var input = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        input += Array(name.utf8)
        var b = Array(Insecure.SHA1.hash(data: input).prefix(16))
        b[6] = (b[6] & 0x0F) | 0x50  // version 5
        b[8] = (b[8] & 0x3F) | 0x80  // RFC variant
        let uuid = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
        return uuid.uuidString.lowercased()
    }
}
