import _CryptoExtras
import Crypto
import FieldbookModel
import Foundation
import SealedSync

/// Per-call cost of the primitives a sealed cell may be built from (`--seal-micro`), on a
/// 32-byte plaintext with 100 bytes of associated data: what the sealing design was chosen on.
enum SealMicro {
    static func run() throws {
        let key = SymmetricKey(size: .bits256)
        let plain = [UInt8](repeating: 7, count: 32)
        let aad = [UInt8](repeating: 3, count: 100)
        let n = 200_000
        func time(_ what: String, _ body: () throws -> Void) rethrows {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<n { try body() }
            let ns = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(n)
            print(String(format: "%-44@ %7.0f ns", what as NSString, ns))
        }
        let sivNonce = try AES.GCM._SIV.Nonce(data: [UInt8](repeating: 1, count: 12))
        let gcmNonce = try AES.GCM.Nonce(data: [UInt8](repeating: 1, count: 12))
        let chachaNonce = try ChaChaPoly.Nonce(data: [UInt8](repeating: 1, count: 12))
        try time("AES-256-GCM-SIV seal") { _ = try AES.GCM._SIV.seal(plain, using: key, nonce: sivNonce, authenticating: aad) }
        try time("AES-256-GCM seal (given nonce)") { _ = try AES.GCM.seal(plain, using: key, nonce: gcmNonce, authenticating: aad) }
        try time("AES-256-GCM seal (random nonce)") { _ = try AES.GCM.seal(plain, using: key, authenticating: aad) }
        try time("ChaCha20-Poly1305 seal (given nonce)") { _ = try ChaChaPoly.seal(plain, using: key, nonce: chachaNonce, authenticating: aad) }
        time("SHA-256 of 100 bytes") { _ = SHA256.hash(data: aad) }
        time("HMAC-SHA256 of 100 bytes") { _ = HMAC<SHA256>.authenticationCode(for: aad, using: key) }
        let site = SiteID.random()
        let at = CellAddress(region: "almaty", table: "incident", row: UUID().uuidString.lowercased(), field: "description", hlc: 1 << 40, site: site)
        var ring = KeyRing()
        ring.add(region: "almaty", epoch: 1, key: key)
        try time("CellSealer.seal (whole cell)") { _ = try CellSealer.seal(.text("detained after a post"), at: at, epoch: 1, key: key) }
        let cell = try CellSealer.seal(.text("detained after a post"), at: at, epoch: 1, key: key)
        try time("CellSealer.open (whole cell)") { _ = try CellSealer.open(cell, at: at, keys: ring) }
    }
}
