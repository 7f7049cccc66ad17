import Foundation

/// The identity of one replica (one device's database, or a server).
///
/// Ordered by its 16 bytes, so that equal clocks are broken the same way on every replica.
public struct SiteID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let uuid: UUID

    public init(_ uuid: UUID) { self.uuid = uuid }

    public init?(_ string: String) {
        guard let u = UUID(uuidString: string) else { return nil }
        self.uuid = u
    }

    /// A new random site id.
    public static func random() -> SiteID { SiteID(UUID()) }

    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    public init?(bytes: some Collection<UInt8>) {
        self.init(bytes: ArraySlice(bytes))
    }

    /// From 16 bytes (nil for any other count). Not generic: decoders call it for every cell,
    /// and an unspecialised generic copy cost the PostgreSQL store a tenth of its CPU under load.
    public init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var t: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        bytes.withUnsafeBytes { src in
            withUnsafeMutableBytes(of: &t) { dst in dst.copyMemory(from: src) }
        }
        self.uuid = UUID(uuid: t)
    }

    public init?(bytes: [UInt8]) { self.init(bytes: bytes[...]) }

    public static func < (a: SiteID, b: SiteID) -> Bool {
        withUnsafeBytes(of: a.uuid.uuid) { x in
            withUnsafeBytes(of: b.uuid.uuid) { y in
                for i in 0..<16 where x[i] != y[i] { return x[i] < y[i] }
                return false
            }
        }
    }

    public var description: String { uuid.uuidString.lowercased() }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let id = SiteID(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "site id \"\(s)\" is not a UUID")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
