/// Reads the binary wire form written by `BinaryWriter`, refusing anything malformed with a
/// `ModelError` that names what was being read and the byte offset.
public struct BinaryReader {
    let bytes: [UInt8]
    private(set) var offset = 0
    /// What the error messages call the body ("body", "changes", …).
    let name: String
    /// How many rows plus field writes the message may still hold (see `spend`).
    private var budget: Int
    let limit: Int

    public init(_ bytes: [UInt8], name: String, maxItems: Int = .max) {
        self.bytes = bytes
        self.name = name
        budget = maxItems
        limit = maxItems
    }

    /// Counts `n` rows or writes against the budget, before anything is allocated for them.
    public mutating func spend(_ n: Int, _ what: String) throws(ModelError) {
        budget -= n
        guard budget >= 0 else {
            throw ModelError(.tooLarge, field: "\(name).\(what)",
                             reason: "the message holds more than \(limit) rows and field writes; send smaller batches")
        }
    }

    var remaining: Int { bytes.count - offset }

    public func fail(_ what: String, _ reason: String) -> ModelError {
        ModelError(.invalidValue, field: "\(name).\(what)", reason: "\(reason) (at byte \(offset) of \(bytes.count))")
    }

    public mutating func byte(_ what: String) throws(ModelError) -> UInt8 {
        guard offset < bytes.count else { throw fail(what, "the body ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func raw(_ n: Int, _ what: String) throws(ModelError) -> ArraySlice<UInt8> {
        guard n <= remaining else { throw fail(what, "the body ends early") }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    public mutating func varint(_ what: String) throws(ModelError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte(what)
            if shift == 63 && b > 1 { throw fail(what, "is a varint longer than 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    public mutating func signed(_ what: String) throws(ModelError) -> Int64 {
        let u = try varint(what)
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    /// A count of items that each take at least `minBytes` bytes: never more than the rest of the body holds.
    public mutating func count(_ what: String, minBytes: Int = 1) throws(ModelError) -> Int {
        let n = try varint(what)
        guard n <= UInt64(remaining / max(minBytes, 1)) else { throw fail(what, "counts \(n) items, more than the body holds") }
        return Int(n)
    }

    /// `n` items read by `item`.
    public mutating func list<T>(_ n: Int, _ item: (inout BinaryReader) throws(ModelError) -> T) throws(ModelError) -> [T] {
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try item(&self)) }
        return out
    }

    /// A non-negative index or offset.
    public mutating func index(_ what: String) throws(ModelError) -> Int {
        let n = try varint(what)
        guard n <= UInt64(Int32.max) else { throw fail(what, "is \(n), out of range") }
        return Int(n)
    }

    public mutating func string(_ what: String) throws(ModelError) -> String {
        let n = try count(what)
        let slice = try raw(n, what)
        guard let s = String(validating: slice, as: UTF8.self) else { throw fail(what, "is not valid UTF-8") }
        return s
    }

    /// A flag byte: 0 or 1.
    public mutating func flag(_ what: String) throws(ModelError) -> Bool {
        switch try byte(what) {
        case 0: return false
        case 1: return true
        case let b: throw fail(what, "is \(b); a flag is 0 or 1")
        }
    }

    public mutating func value(_ what: String) throws(ModelError) -> Value {
        switch try byte(what) {
        case 0: return .null
        case 1: return .integer(try signed(what))
        case 2:
            var x: UInt64 = 0
            for (k, b) in try raw(8, what).enumerated() { x |= UInt64(b) << (8 * UInt64(k)) }
            let d = Double(bitPattern: x)
            guard d.isFinite else { throw fail(what, "is not a finite number") }
            return .real(d)
        case 3: return .text(try string(what))
        case 4:
            let n = try count(what)
            guard n <= WireLimits.maxSealedBytes else { throw fail(what, "is a sealed value of \(n) bytes; at most \(WireLimits.maxSealedBytes)") }
            return .sealed(Array(try raw(n, what)))
        case let t: throw fail(what, "has value tag \(t); tags are 0 null, 1 integer, 2 real, 3 text, 4 sealed")
        }
    }

    /// Checks the body's leading magic bytes.
    public mutating func magic(_ m: String) throws(ModelError) {
        let expected = Array(m.utf8)
        guard remaining >= expected.count, Array(bytes[offset..<(offset + expected.count)]) == expected else {
            throw fail("magic", "does not start with \"\(m)\"")
        }
        offset += expected.count
    }

    public func end() throws(ModelError) {
        guard remaining == 0 else { throw fail("end", "has \(remaining) bytes after the end of the message") }
    }
}
