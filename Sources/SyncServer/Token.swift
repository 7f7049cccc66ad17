import Crypto
import FieldbookModel
import Foundation

/// What a device token allows.
/// A request's bearer as the store knows it: a token that is not revoked, and whether a
/// coordinator revoked its device (then it may do nothing: 403 `device_revoked`).
public struct Credential: Sendable, Equatable {
    public var token: TokenInfo
    public var deviceRevoked: Bool

    public init(token: TokenInfo, deviceRevoked: Bool) {
        self.token = token
        self.deviceRevoked = deviceRevoked
    }
}

public struct TokenInfo: Sendable, Equatable, Codable {
    public var name: String
    /// The regions it may push and pull; `*` (coordinators only) means every region.
    public var regions: [String]
    public var coordinator: Bool
    public var createdAt: String
    public var revokedAt: String?

    public init(name: String, regions: [String], coordinator: Bool, createdAt: String, revokedAt: String? = nil) {
        self.name = name
        self.regions = regions
        self.coordinator = coordinator
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    /// The regions a pull is limited to; nil for every region.
    public var scope: Set<String>? {
        coordinator && regions.contains(SyncProtocol.allRegions) ? nil : Set(regions)
    }

    public func allows(region: String) -> Bool { scope?.contains(region) ?? true }
}

/// Tokens are 32 random bytes, base64url; the server stores only their SHA-256.
public enum Tokens {
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return "fb_" + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }

    /// Whether two hashes are equal, in time that does not depend on where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// Checks a token's name and regions before it is created.
    public static func validate(name: String, regions: [String], coordinator: Bool) throws -> [String] {
        guard !name.isEmpty, name.count <= 100, !name.contains(where: { $0.isWhitespace || $0.isNewline }),
              !Checks.hasControl(name, allowBreaks: false), !Checks.hasBidiOverride(name) else {
            throw ServerError.badRequest("invalid", "--name: \(String(name.prefix(100)).debugDescription) must be 1 to 100 characters without spaces, control or direction-override characters")
        }
        let list = regions.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw ServerError.badRequest("invalid", "--regions: give at least one region, e.g. almaty,atyrau") }
        for r in list {
            if r == SyncProtocol.allRegions {
                guard coordinator else { throw ServerError.badRequest("invalid", "--regions: \"*\" (all regions) is for coordinator tokens only; add --coordinator") }
            } else {
                guard Checks.isRegion(r) else {
                    throw ServerError.badRequest("invalid", "--regions: \"\(r)\" is not a region name (lowercase letters, digits, '-' and '_')")
                }
            }
        }
        return Array(Set(list)).sorted()
    }
}
