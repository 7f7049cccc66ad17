import FieldbookModel
import Foundation
import SealedSync
import SyncServer
import Testing

/// The pure decisions of key delivery and of sealed pushes: every rule, refused with its code.
@Suite struct KeyAuthorizerTests {
    static let coordinator = TokenInfo(name: "hq", regions: ["*"], coordinator: true, createdAt: "")
    static let monitor = TokenInfo(name: "aigul", regions: ["almaty"], coordinator: false, createdAt: "")

    static func device(_ name: String, _ keys: DevicePublicKeys, regions: [String], coordinator: Bool = false,
                       state: DeviceInfo.State = .approved) -> DeviceInfo {
        DeviceInfo(device: name, regions: regions, coordinator: coordinator, agreement: keys.agreementBase64, signing: keys.signingBase64,
                   state: state, registeredAt: "")
    }

    let hqKeys = DeviceKeys().publicKeys, aigulKeys = DeviceKeys().publicKeys
    var devices: [String: DeviceInfo] {
        ["hq": Self.device("hq", hqKeys, regions: ["*"], coordinator: true), "aigul": Self.device("aigul", aigulKeys, regions: ["almaty"])]
    }

    func key(_ device: String = "aigul", region: String = "almaty", epoch: UInt32 = 1, wrapped: String? = nil, sender: DevicePublicKeys? = nil) -> WrappedKey {
        let s = sender ?? hqKeys
        return WrappedKey(device: device, region: region, epoch: epoch, wrapped: wrapped ?? Data(count: 80).base64EncodedString(), sender: "hq",
                          senderAgreement: s.agreementBase64, senderSigning: s.signingBase64)
    }

    func refusal(_ upload: KeyUploadRequest, token: TokenInfo = Self.coordinator, devices d: [String: DeviceInfo]? = nil,
                 epochs: [String: UInt32] = [:]) -> String? {
        do {
            _ = try KeyAuthorizer.authorize(upload, token: token, devices: d ?? devices, epochs: epochs)
            return nil
        } catch { return error.code }
    }

    @Test func everyRuleOfKeyDeliveryRefusesWithItsCode() {
        #expect(refusal(KeyUploadRequest(keys: [key()])) == nil)
        #expect(refusal(KeyUploadRequest(keys: [key()]), token: Self.monitor) == "coordinator_only")
        #expect(refusal(KeyUploadRequest(keys: [key()]), devices: ["aigul": devices["aigul"]!]) == "device_not_registered")
        var pending = devices
        pending["hq"]!.state = .pending
        #expect(refusal(KeyUploadRequest(keys: [key()]), devices: pending) == "device_not_approved")
        #expect(refusal(KeyUploadRequest(keys: [key()], approve: ["hq"]), devices: pending) == nil, "the first coordinator approves itself")
        #expect(refusal(KeyUploadRequest(keys: [key(sender: aigulKeys)])) == "sender_mismatch")
        #expect(refusal(KeyUploadRequest(keys: [key("nobody")])) == "device_not_found")
        var revoked = devices
        revoked["aigul"]!.state = .revoked
        #expect(refusal(KeyUploadRequest(keys: [key()]), devices: revoked) == "device_revoked")
        #expect(refusal(KeyUploadRequest(keys: [], approve: ["aigul"]), devices: revoked) == "device_revoked")
        #expect(refusal(KeyUploadRequest(keys: [key(region: "atyrau")])) == "region_not_allowed")
        #expect(refusal(KeyUploadRequest(keys: [key(region: "Not A Region")])) == "invalid")
        #expect(refusal(KeyUploadRequest(keys: [key(epoch: 0)])) == "epoch_out_of_order")
        #expect(refusal(KeyUploadRequest(keys: [key(epoch: 3)]), epochs: ["almaty": 1]) == "epoch_out_of_order")
        #expect(refusal(KeyUploadRequest(keys: [key(epoch: 2)]), epochs: ["almaty": 1]) == nil)
        #expect(refusal(KeyUploadRequest(keys: [key(wrapped: Data(count: 79).base64EncodedString())])) == "invalid")
        #expect(refusal(KeyUploadRequest(keys: [key(wrapped: "not base64 ***")])) == "invalid")
        #expect(refusal(KeyUploadRequest(keys: Array(repeating: key(), count: KeyLimits.maxKeys + 1))) == "too_many_keys")
        #expect(refusal(KeyUploadRequest(keys: [key()], roster: "***")) == "invalid")
    }

    /// Issue 19, item 5: a coordinator acts only within its own regions — keys only of regions
    /// its token covers, approvals and revocations only of devices whose every region it covers,
    /// a device list of the devices that share a region with it; `*` covers all.
    @Test func aRegionalCoordinatorActsOnlyWithinItsRegions() throws {
        let almatyHQ = TokenInfo(name: "almaty-hq", regions: ["almaty"], coordinator: true, createdAt: "")
        let hqKeys = DeviceKeys().publicKeys, b = DeviceKeys().publicKeys, c = DeviceKeys().publicKeys
        let d: [String: DeviceInfo] = [
            "almaty-hq": Self.device("almaty-hq", hqKeys, regions: ["almaty"], coordinator: true),
            "aigul": Self.device("aigul", aigulKeys, regions: ["almaty"], state: .pending),
            "baurzhan": Self.device("baurzhan", b, regions: ["atyrau"], state: .pending),
            "both": Self.device("both", c, regions: ["almaty", "atyrau"], state: .pending),
        ]
        func k(_ device: String, _ region: String) -> WrappedKey {
            WrappedKey(device: device, region: region, epoch: 1, wrapped: Data(count: 80).base64EncodedString(), sender: "almaty-hq",
                       senderAgreement: hqKeys.agreementBase64, senderSigning: hqKeys.signingBase64)
        }
        #expect(refusal(KeyUploadRequest(keys: [k("aigul", "almaty")], approve: ["aigul"]), token: almatyHQ, devices: d) == nil)
        #expect(refusal(KeyUploadRequest(keys: [k("baurzhan", "atyrau")]), token: almatyHQ, devices: d) == "region_not_allowed")
        #expect(refusal(KeyUploadRequest(keys: [k("both", "atyrau")]), token: almatyHQ, devices: d) == "region_not_allowed")
        #expect(refusal(KeyUploadRequest(keys: [], approve: ["baurzhan"]), token: almatyHQ, devices: d) == "region_not_allowed")
        #expect(refusal(KeyUploadRequest(keys: [], approve: ["both"]), token: almatyHQ, devices: d) == "region_not_allowed")
        #expect(throws: ServerError.self) { try KeyAuthorizer.revoke("baurzhan", token: almatyHQ, devices: d) }
        #expect(throws: ServerError.self) { try KeyAuthorizer.revoke("both", token: almatyHQ, devices: d) }
        try KeyAuthorizer.revoke("aigul", token: almatyHQ, devices: d)
        // A coordinator of every region may do all of it; a regional one sees it (to give it
        // its region's new epochs) but cannot approve or revoke it.
        var all = d
        all["hq"] = Self.device("hq", self.hqKeys, regions: ["*"], coordinator: true)
        #expect(try KeyAuthorizer.visible(Array(all.values), to: almatyHQ).map(\.device).sorted() == ["aigul", "almaty-hq", "both", "hq"])
        #expect(throws: ServerError.self) { try KeyAuthorizer.revoke("hq", token: almatyHQ, devices: all) }
        try KeyAuthorizer.revoke("both", token: Self.coordinator, devices: all)
        #expect(refusal(KeyUploadRequest(keys: [], approve: ["baurzhan", "both"]), token: Self.coordinator, devices: all) == nil)
        #expect(try KeyAuthorizer.visible(Array(all.values), to: Self.coordinator).count == 5)
        #expect(throws: ServerError.self) { try KeyAuthorizer.visible(Array(d.values), to: Self.monitor) }
    }

    @Test func aNewEpochStartsWithItsFirstKeyAndOnlyOnce() throws {
        let plan = try KeyAuthorizer.authorize(KeyUploadRequest(keys: [key(epoch: 2), key("hq", epoch: 2), key(epoch: 1)]),
                                               token: Self.coordinator, devices: devices, epochs: ["almaty": 1])
        #expect(plan.newEpochs == ["almaty": 2] && plan.keys.count == 3)
    }

    @Test func aDevicesKeysAreTwoPublicKeysOfThirtyTwoBytes() {
        let good = DeviceRegistration(agreement: hqKeys.agreementBase64, signing: hqKeys.signingBase64)
        #expect((try? KeyAuthorizer.registration(good)) != nil)
        for bad in [DeviceRegistration(agreement: "", signing: hqKeys.signingBase64),
                    DeviceRegistration(agreement: Data(count: 31).base64EncodedString(), signing: hqKeys.signingBase64),
                    DeviceRegistration(agreement: hqKeys.agreementBase64, signing: String(repeating: "A", count: 5_000))] {
            #expect(throws: ServerError.self) { try KeyAuthorizer.registration(bad) }
        }
    }

    /// Pushes: every sealed field carries the region's current key epoch; clear values, older,
    /// newer and missing epochs are refused with their codes.
    @Test func aPushIsSealedUnderTheRegionsCurrentEpoch() {
        let site = SiteID.random()
        let h: Int64 = 1_790_000_000_000 << 16
        func push(name: Value) -> PushBatch {
            PushBatch(site: site, from: 0, to: 1, changes: Changeset(sites: [site], tables: [
                TableChanges(table: "person", fields: ["region", "name"], rows: [RowChange(id: UUID().uuidString.lowercased(), cl: 1, hlc: h, site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0), FieldChange(field: 1, value: name, hlc: h, site: 0)])]),
            ]), quarantined: [])
        }
        func cell(_ epoch: UInt32) -> Value { .sealed(SealedForm.header(epoch: epoch) + [UInt8](repeating: 7, count: 32)) }
        func code(_ b: PushBatch, _ epochs: [String: UInt32]) -> String? {
            do {
                _ = try PushAuthorizer.authorize(b, token: Self.monitor, facts: PushFacts(epochs: epochs), serverSite: SiteID.random())
                return nil
            } catch { return error.code }
        }
        #expect(code(push(name: cell(2)), ["almaty": 2]) == nil)
        #expect(code(push(name: .text("Asqar Qaiyrbek")), ["almaty": 2]) == "not_sealed")
        #expect(code(push(name: .null), ["almaty": 2]) == "not_sealed")
        #expect(code(push(name: cell(1)), ["almaty": 2]) == "stale_key_epoch")
        #expect(code(push(name: cell(3)), ["almaty": 2]) == "unknown_key_epoch")
        #expect(code(push(name: cell(1)), [:]) == "no_region_key")
        #expect(code(push(name: .sealed([1, 1, 2])), ["almaty": 1]) == "not_sealed")
    }
}
