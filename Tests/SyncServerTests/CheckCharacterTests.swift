import FieldbookModel
import FieldbookTLS
import Foundation
import SealedSync
import Testing

/// Issue 19, item 8: fingerprints and pins carry a check character per group, so that a typo is
/// reported as a typo in its group, and a real mismatch never prints the expected value.
@Suite struct CheckCharacterTests {
    /// Every single wrong digit, in every one of the 36 places of a spoken fingerprint, and
    /// every swap of two different adjacent digits within a group, is a typo in that group —
    /// never a match, never "another key".
    @Test func everySingleDigitErrorAndAdjacentSwapInAFingerprintIsCaughtInItsGroup() {
        let keys = DeviceKeys().publicKeys
        let spoken = Array(keys.spokenFingerprint.filter(\.isNumber))
        #expect(spoken.count == 36)
        #expect(keys.check(fingerprint: keys.spokenFingerprint) == .matches)
        #expect(keys.check(fingerprint: keys.fingerprint) == .matches, "the 30-digit form of earlier releases still works")
        for i in 0..<36 {
            for d in "0123456789" where d != spoken[i] {
                var typed = spoken
                typed[i] = d
                #expect(keys.check(fingerprint: String(typed)) == .mistyped(groups: [i / 6 + 1]), "digit \(i) as \(d)")
            }
            if i % 6 < 5, spoken[i] != spoken[i + 1] {
                var swapped = spoken
                swapped.swapAt(i, i + 1)
                #expect(keys.check(fingerprint: String(swapped)) == .mistyped(groups: [i / 6 + 1]), "swap at \(i)")
            }
        }
        let other = DeviceKeys().publicKeys
        #expect(keys.check(fingerprint: other.spokenFingerprint) == .differs)
        #expect(keys.check(fingerprint: "12345") == .malformed(digits: 5))
        let told = DevicePublicKeys.explain(.differs)!
        #expect(told.contains("Do not approve") && !told.contains(keys.spokenFingerprint))
    }

    /// A pin as `tls fingerprint` prints it: every single wrong hex digit is a typo in its group;
    /// openssl's plain form and either case are accepted as the same pin.
    @Test func everySingleHexErrorInAPinIsCaughtInItsGroup() {
        let plain = "sha256:" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let shown = TLSPin.display(plain)
        #expect(TLSPin.normalize(shown) == plain && TLSPin.normalize(shown.uppercased().replacingOccurrences(of: "SHA256:", with: "sha256:")) == plain)
        #expect(TLSPin.normalize(plain) == plain)
        let hex = Array(shown.dropFirst(7).filter { $0 != "-" })
        for i in 0..<72 {
            for c in "0123456789abcdef" where c != hex[i] {
                var typed = hex
                typed[i] = c
                #expect(TLSPin.parse("sha256:" + String(typed)) == .failure(.mistyped(groups: [i / 9 + 1])), "char \(i) as \(c)")
            }
        }
        #expect(TLSPin.parse("sha256:abc") == .failure(.malformed))
    }
}
