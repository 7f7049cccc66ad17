import Foundation

/// The physical clock both binaries read by default: the system time, shifted by
/// `FIELDBOOK_CLOCK_SKEW_MS` (milliseconds, may be negative) when that is set. The shift exists to
/// rehearse a wrong clock end to end (tests, drills): libfaketime cannot be used with Swift
/// binaries, whose command-line arguments it empties.
public enum SystemClock {
    /// The shift read from the environment once; 0 when unset or not a whole number.
    public static let skewMillis: Int64 = ProcessInfo.processInfo.environment["FIELDBOOK_CLOCK_SKEW_MS"].flatMap { Int64($0) } ?? 0

    /// Milliseconds since 1970, shifted by `skewMillis`.
    @Sendable public static func millis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) &+ skewMillis
    }
}
