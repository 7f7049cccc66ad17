@preconcurrency import Crypto
import FieldbookModel
import Foundation

/// Pending sealed changes carried on a USB stick when the network is down: a push in its binary
/// form, naming the device (its token's name on the server) and signed with the device's
/// Ed25519 key. It holds no token, and every value in it is sealed: whoever finds the stick
/// learns the metadata a server would see (ids, regions, clocks, sizes) and nothing more.
///
/// `"FBB1" · device (2-byte length, UTF-8) · push (4-byte length, FBP1 binary) · signer's
/// public keys (64) · Ed25519 signature over everything before it (64)`.
public struct OfflineBundle: Sendable {
    public var device: String
    public var push: PushRequest
    public var signer: DevicePublicKeys

    static let magic = Array("FBB1".utf8)
    /// Largest bundle read: 256 MiB.
    public static let maxBytes = 256 << 20

    public init(device: String, push: PushRequest, signer: DevicePublicKeys) {
        self.device = device
        self.push = push
        self.signer = signer
    }

    /// The signed bytes of a bundle of `push`, made by `device`.
    public static func sign(device: String, push: PushRequest, with keys: DeviceKeys) throws -> [UInt8] {
        let name = Array(device.utf8)
        let body = push.binary()
        var out = magic
        out += [UInt8(truncatingIfNeeded: name.count >> 8), UInt8(truncatingIfNeeded: name.count)] + name
        for k in (0..<4).reversed() { out.append(UInt8(truncatingIfNeeded: body.count >> (8 * k))) }
        out += body
        out += keys.publicKeys.agreement + keys.publicKeys.signing
        out += Array(try keys.signing.signature(for: out))
        return out
    }

    /// Reads and checks a bundle: its form, its limits, and that its signature is its signer's.
    /// Whether the signer is a device the reader accepts is the reader's decision.
    public static func open(_ bytes: [UInt8], maxChanges: Int = 1_000_000) throws(SealedSyncError) -> OfflineBundle {
        func bad(_ why: String) -> SealedSyncError { SealedSyncError(.malformed, "not a Fieldbook bundle: \(why)") }
        guard bytes.count <= maxBytes else { throw bad("larger than \(maxBytes >> 20) MiB") }
        guard bytes.count >= 4 + 2 + 4 + 64 + 64, Array(bytes[0..<4]) == magic else { throw bad("no FBB1 header") }
        let n = Int(bytes[4]) << 8 | Int(bytes[5])
        guard n >= 1, n <= KeyLimits.maxDeviceBytes, bytes.count >= 6 + n + 4 + 128,
              let device = String(validating: bytes[6..<(6 + n)], as: UTF8.self) else { throw bad("the device name is malformed") }
        // Checked here, where it enters from a file: it is shown on a terminal and kept.
        guard !Checks.hasControl(device, allowBreaks: false), !Checks.hasBidiOverride(device) else {
            throw bad("the device name holds control or direction-override characters")
        }
        let at = 6 + n
        let m = bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
        guard m >= 0, bytes.count == at + 4 + m + 128 else { throw bad("its length does not add up") }
        let s = at + 4 + m
        let signer = DevicePublicKeys(agreement: Array(bytes[s..<(s + 32)]), signing: Array(bytes[(s + 32)..<(s + 64)]))
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: signer.signing),
              key.isValidSignature(bytes[(s + 64)...], for: bytes[0..<(s + 64)]) else {
            throw SealedSyncError(.tampered, "the bundle's signature does not hold: it was altered after it was made")
        }
        do {
            let push = try PushRequest(binary: Array(bytes[(at + 4)..<s]), maxChanges: maxChanges)
            return OfflineBundle(device: device, push: push, signer: signer)
        } catch {
            throw bad("\(error)")
        }
    }
}
