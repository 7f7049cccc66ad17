/// Check characters for codes people read aloud or copy by hand (device fingerprints, TLS
/// pins), so that a misheard or mistyped group is reported as a typo — "group 4 looks
/// mistyped" — instead of as a mismatch that sounds like an attack.
public enum CheckCharacters {
    /// Damm's algorithm (H. M. Damm, 2004): one decimal check digit that catches every single
    /// wrong digit and every swap of two adjacent digits. The table is Damm's totally
    /// anti-symmetric quasigroup of order 10.
    static let damm: [[UInt8]] = [
        [0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
        [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
        [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
        [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
    ]

    /// The Damm check digit of `digits` (each 0…9).
    public static func dammDigit(_ digits: [UInt8]) -> UInt8 {
        var interim: UInt8 = 0
        for d in digits where d < 10 { interim = damm[Int(interim)][Int(d)] }
        return interim
    }

    /// The Luhn mod 16 check character of `values` (each 0…15): catches every single wrong hex
    /// digit and most swaps of adjacent ones.
    public static func luhn16(_ values: [UInt8]) -> UInt8 {
        var sum = 0
        var double = true
        for v in values.reversed() {
            var addend = Int(v) * (double ? 2 : 1)
            addend = addend / 16 + addend % 16
            sum += addend
            double.toggle()
        }
        return UInt8((16 - sum % 16) % 16)
    }
}
