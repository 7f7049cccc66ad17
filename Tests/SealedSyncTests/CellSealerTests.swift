@preconcurrency import Crypto
import FieldbookModel
import Foundation
@testable import SealedSync
import SyncCore
import Testing

/// The sealing of cells, seeded and reproducible (`FB_SEAL_SEED` replays a run; the seed is in
/// every failure message).
@Suite struct CellSealerTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["FB_SEAL_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)

    static func ring(_ regions: [String] = ["almaty", "atyrau"], epochs: ClosedRange<UInt32> = 1...1) -> KeyRing {
        var r = KeyRing()
        for region in regions { for e in epochs { r.add(region: region, epoch: e, key: KeyRing.newKey()) } }
        return r
    }

    static func value(_ rng: inout SplitMix64) -> Value {
        switch rng.next() % 5 {
        case 0: return .null
        case 1: return .integer(Int64(bitPattern: rng.next()))
        case 2: return .real(Double(Int64(bitPattern: rng.next() >> 12)) / 7)
        case 3:
            let alphabet = Array("Асқар Қайырбек Qaiyrbek ölüm 🙂 \n\t\"'\\")
            return .text(String((0..<Int(rng.next() % 300)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
        default: return .text("")
        }
    }

    static func address(_ rng: inout SplitMix64) -> CellAddress {
        CellAddress(region: rng.next() % 2 == 0 ? "almaty" : "atyrau", table: ["person", "incident"][Int(rng.next() % 2)],
                    row: UUID().uuidString.lowercased(), field: ["name", "notes", "kind"][Int(rng.next() % 3)],
                    hlc: Int64(rng.next() >> 2) | 1, site: SiteID.random())
    }

    @Test func aCellOpensAtItsAddressAndNowhereElse() throws {
        var rng = SplitMix64(seed: Self.seed)
        let keys = Self.ring()
        for k in 0..<2_000 {
            let why = "seed \(Self.seed) (FB_SEAL_SEED), case \(k)"
            let v = Self.value(&rng), at = Self.address(&rng)
            let (e, key) = keys.current(at.region)!
            let cell = try CellSealer.seal(v, at: at, epoch: e, key: key)
            #expect(try CellSealer.open(cell, at: at, keys: keys) == v, "\(why)")
            // Moved to another region, table, row, field, clock or site: refused.
            var moves: [CellAddress] = []
            for change in 0..<6 {
                var m = at
                switch change {
                case 0: m.region = at.region == "almaty" ? "atyrau" : "almaty"
                case 1: m.table = at.table == "person" ? "incident" : "person"
                case 2: m.row = UUID().uuidString.lowercased()
                case 3: m.field = at.field + "x"
                case 4: m.hlc = at.hlc ^ 1
                default: m.site = SiteID.random()
                }
                moves.append(m)
            }
            for m in moves {
                #expect(throws: SealedSyncError.self, "\(why): opened at \(m)") { try CellSealer.open(cell, at: m, keys: keys) }
            }
            // Any one byte altered: refused, never a trap.
            var altered = cell
            let i = Int(rng.next() % UInt64(cell.count))
            altered[i] ^= UInt8(1 + rng.next() % 255)
            #expect(throws: SealedSyncError.self, "\(why): byte \(i) altered") { try CellSealer.open(altered, at: at, keys: keys) }
        }
    }

    @Test func aCellHidesItsValuesLengthWithinSixteenBytes() throws {
        let keys = Self.ring()
        var rng = SplitMix64(seed: Self.seed)
        let at = Self.address(&rng)
        let (e, key) = keys.current(at.region)!
        let sizes = try Set((0...13).map { n in try CellSealer.seal(.text(String(repeating: "a", count: n)), at: at, epoch: e, key: key).count })
        #expect(sizes.count == 1, "sizes \(sizes)")
        #expect(try CellSealer.seal(.null, at: at, epoch: e, key: key).count == sizes.first)
    }

    @Test func paddedPlaintextsAreReadStrictly() {
        var rng = SplitMix64(seed: Self.seed)
        var opened = 0
        for k in 0..<50_000 {
            var bytes = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if k % 2 == 0, !bytes.isEmpty { bytes[0] = UInt8(rng.next() % 5) }
            if k % 4 == 0, bytes.count > 1 { bytes[1] = UInt8(rng.next() % 20) }
            // Often a plausible one: a tag, a length, bytes, zeros to a block boundary (or not quite).
            if k % 3 == 0 {
                let n = Int(rng.next() % 12)
                bytes = [UInt8(rng.next() % 5), UInt8(n)] + (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                bytes += [UInt8](repeating: 0, count: (16 - bytes.count % 16) % 16 + (k % 9 == 0 ? 1 : 0))
            }
            if let v = CellSealer.unpad(bytes) {
                opened += 1
                #expect(CellSealer.pad(v) == bytes, "seed \(Self.seed) (FB_SEAL_SEED), case \(k): \(bytes) is not the one padding of \(v)")
            }
        }
        #expect(opened > 0, "the generator reaches well-formed plaintexts")
    }

    @Test func aCellUnderANewEpochDoesNotOpenWithTheOldKeys() throws {
        var old = KeyRing()
        let k1 = KeyRing.newKey()
        old.add(region: "almaty", epoch: 1, key: k1)
        var now = old
        now.add(region: "almaty", epoch: 2, key: KeyRing.newKey())
        var rng = SplitMix64(seed: Self.seed)
        var at = Self.address(&rng)
        at.region = "almaty"
        let (e, key) = now.current("almaty")!
        #expect(e == 2)
        let cell = try CellSealer.seal(.text("written after the revocation"), at: at, epoch: e, key: key)
        #expect(throws: SealedSyncError(.missingKey, "")) { _ = try Self.kind(CellSealer.open(cell, at: at, keys: old)) }
        // Even told that the old key is epoch 2's, it does not open.
        var forged = KeyRing()
        forged.add(region: "almaty", epoch: 2, key: k1)
        #expect(throws: SealedSyncError(.doesNotOpen, "")) { _ = try Self.kind(CellSealer.open(cell, at: at, keys: forged)) }
    }

    /// Rethrows with the message dropped, so that the kind alone is compared.
    static func kind<T>(_ body: @autoclosure () throws -> T) throws -> T {
        do { return try body() } catch let e as SealedSyncError { throw SealedSyncError(e.kind, "") }
    }

    @Test func aChangesetKeepsRegionAndParentClearAndOpensBackWhole() throws {
        let keys = Self.ring()
        let site = SiteID.random()
        let person = UUID().uuidString.lowercased(), incident = UUID().uuidString.lowercased()
        let h: Int64 = 1_790_000_000_000 << 16
        let cs = Changeset(sites: [site], tables: [
            TableChanges(table: "person", fields: ["region", "name", "born"], rows: [
                RowChange(id: person, cl: 1, hlc: h, site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0),
                    FieldChange(field: 1, value: .text("Асқар Қайырбек"), hlc: h, site: 0),
                    FieldChange(field: 2, value: .text("1976"), hlc: h + 5, site: 0)]),
            ]),
            TableChanges(table: "incident", fields: ["region", "person_id", "kind"], rows: [
                RowChange(id: incident, cl: 1, hlc: h, site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0),
                    FieldChange(field: 1, value: .text(person), hlc: h, site: 0),
                    FieldChange(field: 2, value: .text("detention"), hlc: h, site: 0)]),
                RowChange(id: UUID().uuidString.lowercased(), cl: 2, hlc: h, site: 0),
            ]),
        ], siteNames: ["laptop of Aigerim"])
        let sealed = try ChangesetSealer.seal(cs, keys: keys) { _, _ in nil }
        let values = sealed.tables.flatMap { t in t.rows.flatMap { r in r.fields.map { (t.fields[$0.field], $0.value) } } }
        for (field, v) in values {
            #expect(["region", "person_id"].contains(field) ? !v.isSealed : v.isSealed, "\(field)")
        }
        #expect(sealed.siteNames.first??.hasPrefix("sealed:v1:almaty:") == true)
        #expect(!(sealed.siteNames.first??.contains("Aigerim") ?? true))
        // Through the wire form and back.
        let wire = try WireChangeset(binary: WireChangeset(sealed).binary()).changeset()
        let opened = try ChangesetSealer.open(wire, keys: keys) { _, _ in nil }
        #expect(opened.refused.isEmpty)
        #expect(opened.clear == cs)
        // Without the region's key: the rows are refused, named, and nothing opens.
        let none = try ChangesetSealer.open(wire, keys: Self.ring(["atyrau"])) { _, _ in nil }
        #expect(none.refused.count == 2 && none.refused.allSatisfy { $0.kind == .missingKey && $0.site == site })
        #expect(none.clear.siteNames.isEmpty)
    }

    @Test func aWrappedKeyOpensOnlyForItsDeviceRegionEpochAndSender() throws {
        let coordinator = DeviceKeys(), device = DeviceKeys(), other = DeviceKeys()
        let key = KeyRing.newKey()
        let w = try KeyWrap.wrap(key, region: "almaty", epoch: 3, device: "aigul", to: device.publicKeys, from: coordinator)
        let back = try KeyWrap.unwrap(w, region: "almaty", epoch: 3, device: "aigul", with: device, from: coordinator.publicKeys)
        #expect(back == key)
        let wrong: [(String, UInt32, String, DeviceKeys, DevicePublicKeys)] = [
            ("atyrau", 3, "aigul", device, coordinator.publicKeys), ("almaty", 2, "aigul", device, coordinator.publicKeys),
            ("almaty", 3, "yerlan", device, coordinator.publicKeys), ("almaty", 3, "aigul", other, coordinator.publicKeys),
            ("almaty", 3, "aigul", device, other.publicKeys),  // a server posing as the coordinator
        ]
        for (region, epoch, name, me, sender) in wrong {
            #expect(throws: SealedSyncError.self) { try KeyWrap.unwrap(w, region: region, epoch: epoch, device: name, with: me, from: sender) }
        }
    }

    @Test func aFingerprintIgnoresSeparatorsAndNamesOneKey() {
        let a = DeviceKeys().publicKeys, b = DeviceKeys().publicKeys
        #expect(a.fingerprint.split(separator: " ").count == 6 && a.fingerprint.filter(\.isNumber).count == 30)
        #expect(a.matches(fingerprint: a.fingerprint.replacingOccurrences(of: " ", with: "-")))
        #expect(!a.matches(fingerprint: b.fingerprint))
        #expect(!a.matches(fingerprint: String(a.fingerprint.dropLast())))
    }

    @Test func aKeyBackupOpensOnlyWithItsPassphraseAndUnaltered() throws {
        let keys = Self.ring(["almaty", "atyrau"], epochs: 1...3)
        let file = try KeyBackup.seal(keys, trusted: ["12345 67890 12345 67890 12345 67890"], passphrase: "correct horse battery", logN: 10)
        let (back, trusted) = try KeyBackup.open(file, passphrase: "correct horse battery")
        for region in keys.regions { for e in keys.epochs(region) { #expect(back.key(region, epoch: e) == keys.key(region, epoch: e)) } }
        #expect(trusted.count == 1)
        #expect(throws: SealedSyncError(.doesNotOpen, "")) { _ = try Self.kind(KeyBackup.open(file, passphrase: "wrong horse battery")) }
        var altered = file
        altered[altered.count / 2] ^= 1
        #expect(throws: SealedSyncError(.doesNotOpen, "")) { _ = try Self.kind(KeyBackup.open(altered, passphrase: "correct horse battery")) }
        var costly = file
        costly[8] = 30  // a hostile file asking scrypt for 2^30 blocks
        #expect(throws: SealedSyncError(.malformed, "")) { _ = try Self.kind(KeyBackup.open(costly, passphrase: "correct horse battery")) }
    }

    @Test func aRosterVerifiesOnlyAsItsSignerSignedIt() throws {
        let signer = DeviceKeys(), other = DeviceKeys().publicKeys
        let bytes = try CoordinatorRoster.sign([other], by: signer, issuedMillis: 42)
        let r = try #require(CoordinatorRoster.verify(bytes))
        #expect(r.signer == signer.publicKeys && r.members == [signer.publicKeys, other] && r.issuedMillis == 42)
        var rng = SplitMix64(seed: Self.seed)
        for k in 0..<500 {
            var altered = bytes
            let i = Int(rng.next() % UInt64(bytes.count))
            altered[i] ^= UInt8(1 + rng.next() % 255)
            #expect(CoordinatorRoster.verify(altered) == nil, "seed \(Self.seed) (FB_SEAL_SEED), case \(k): byte \(i)")
        }
        #expect(CoordinatorRoster.verify(Array(bytes.dropLast())) == nil)
        #expect(CoordinatorRoster.verify([]) == nil)
    }

    /// A hostile server sends a value in clear where a sealed one belongs, or a device name in
    /// clear, or another site's sealed name: the row is refused (named), no name is taken.
    @Test func clearValuesAndBorrowedNamesFromAServerAreNotTaken() throws {
        let keys = Self.ring()
        let (a, b) = (SiteID.random(), SiteID.random())
        let h: Int64 = 1_790_000_000_000 << 16
        let id = UUID().uuidString.lowercased()
        let cs = Changeset(sites: [a, b], tables: [TableChanges(table: "person", fields: ["region", "name"], rows: [
            RowChange(id: id, cl: 1, hlc: h, site: 0, fields: [
                FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0), FieldChange(field: 1, value: .text("Planted"), hlc: h, site: 0)]),
        ])], siteNames: ["laptop-a", nil])
        let opened = try ChangesetSealer.open(cs, keys: keys) { _, _ in nil }
        #expect(opened.clear.isEmpty && opened.refused.count == 1 && opened.refused[0].kind == .malformed && opened.refused[0].site == a)
        #expect(opened.clear.siteNames.isEmpty, "a clear device name is not taken")
        // A's sealed name, relabelled as B's: bound to A's site, it does not open as B's.
        let sealedName = try #require(try SealedName.seal("laptop-a", site: a, region: "almaty", keys: keys))
        #expect(SealedName.open(sealedName, site: a, keys: keys) == "laptop-a")
        #expect(SealedName.open(sealedName, site: b, keys: keys) == nil)
        #expect(SealedName.open("sealed:v1:almaty:!!!", site: a, keys: keys) == nil)
        #expect(SealedName.open("sealed:v1:Not A Region:AAAA", site: a, keys: keys) == nil)
    }
}
