/// The bounds every value decoded from the wire must respect, checked before the value is used
/// or anything is allocated for it (docs/PROTOCOL.md, "Limits"). Client and server share them.
public enum WireLimits {
    /// Longest row id, in UTF-8 bytes. Record ids are UUIDs (36 bytes); other tables stay short.
    public static let maxIDBytes = 128
    /// Longest device name, in UTF-8 bytes.
    public static let maxDeviceNameBytes = 200
    /// Longest sealed device name on the wire: a sealed cell of the longest name, in base64,
    /// with its prefix and region.
    public static let maxSealedDeviceNameBytes = 512
    /// Longest pull cursor, in UTF-8 bytes.
    public static let maxCursorBytes = 200
    /// Largest causal length. A row is deleted and re-created once per two steps, so real rows
    /// stay far below; the bound keeps `cl + 2` (the next re-creation after a delete) from ever
    /// overflowing `Int64`.
    public static let maxCausalLength: Int64 = 1 << 60
    /// Longest text value of any field, in UTF-8 bytes (a free text of 20,000 characters of up
    /// to 4 bytes each), whatever the field's own check says.
    public static let maxTextBytes = 80_000
    /// Largest sealed cell, in bytes: the longest text sealed, with room for its header (up to
    /// 6 bytes), its tag and length (4), padding to 16 and the 16-byte tag.
    public static let maxSealedBytes = 81_920
    /// Most sites one changeset may name.
    public static let maxSites = 65_536

    /// Whether `raw` is a clock a peer may send: positive (0 means "no version" in a replica) and
    /// below the HLC's 48-bit millisecond range.
    public static func isClock(_ raw: Int64) -> Bool { raw > 0 }

    /// Checks a row id: bounded, one line, no control characters.
    public static func checkID(_ id: String, field: String) throws(ModelError) {
        guard !id.isEmpty, id.utf8.count <= maxIDBytes else {
            throw ModelError.invalid(field, String(id.prefix(40)), "is not a row id (1 to \(maxIDBytes) bytes)")
        }
        guard !Checks.hasControl(id, allowBreaks: false) else {
            throw ModelError.invalid(field, id.debugDescription, "is not a row id (contains a control character)")
        }
    }

    /// Checks a device name as it arrives: one line of at most `maxDeviceNameBytes` bytes, no
    /// control characters (terminal escape sequences), so it is safe to print.
    public static func checkDeviceName(_ name: String, field: String) throws(ModelError) {
        // A sealed name (`sealed:v1:REGION:BASE64`, see SealedName) is longer than the name it hides.
        let limit = name.hasPrefix("sealed:v1:") ? maxSealedDeviceNameBytes : maxDeviceNameBytes
        guard !name.isEmpty, name.utf8.count <= limit, !Checks.hasControl(name, allowBreaks: false),
              !Checks.hasBidiOverride(name)
        else {
            throw ModelError.invalid(field, String(name.prefix(40)).debugDescription,
                                     "is not a device name (1 to \(maxDeviceNameBytes) bytes, one line, no control or direction-override characters)")
        }
    }
}
