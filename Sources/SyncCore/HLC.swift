/// A hybrid logical clock timestamp: 48 bits of milliseconds since 1970 and a 16-bit counter,
/// packed into one `Int64` (`millis << 16 | counter`), so that integer order is clock order.
public struct HLC: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    public init(millis: Int64, counter: Int) {
        precondition(millis >= 0 && millis < HLC.maxMillis && counter >= 0 && counter <= HLC.maxCounter)
        rawValue = millis << 16 | Int64(counter)
    }

    public static let maxCounter = 0xFFFF
    /// 2^47 ms (year 6429): keeps the packed value positive.
    public static let maxMillis: Int64 = 1 << 47
    public static let zero = HLC(rawValue: 0)

    public var millis: Int64 { rawValue >> 16 }
    public var counter: Int { Int(rawValue & 0xFFFF) }

    public static func < (a: HLC, b: HLC) -> Bool { a.rawValue < b.rawValue }

    public var description: String { "\(millis).\(counter)" }
}
