/// Writes the binary wire form (docs/PROTOCOL.md, "Binary bodies"): LEB128 varints,
/// zigzag for signed numbers, length-prefixed UTF-8 strings.
public struct BinaryWriter: Sendable {
    public var bytes: [UInt8] = []

    public init() {}

    public mutating func raw(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }

    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: x) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    /// A count or index. Never negative in a message this code builds; a negative one (only a
    /// test building hostile bodies has it) is written as its bit pattern rather than trapping.
    public mutating func count(_ n: Int) { varint(UInt64(truncatingIfNeeded: n)) }

    public mutating func signed(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            count(u.count)
            bytes.append(contentsOf: u)
        }
    }

    public mutating func value(_ v: Value) {
        switch v {
        case .null: byte(0)
        case .integer(let i): byte(1); signed(i)
        case .real(let d):
            byte(2)
            var x = d.bitPattern
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: x))
                x >>= 8
            }
        case .text(let s): byte(3); string(s)
        case .sealed(let b):
            byte(4)
            count(b.count)
            bytes.append(contentsOf: b)
        }
    }
}
