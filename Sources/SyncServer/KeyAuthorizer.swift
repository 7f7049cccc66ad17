import FieldbookModel
import Foundation

/// Decides what a coordinator's key upload may store. Pure: it takes the upload, the token,
/// the registered devices and the regions' current epochs, and returns the plan or a refusal.
///
/// Rules (docs/SECURITY.md, "Keys"):
/// - Only coordinator tokens deliver keys, approve or revoke — and only within their own
///   regions (`*`: all): a key only of a region the token covers, an approval or revocation
///   only of a device whose every region it covers; the device list shows only devices that
///   share a region with it, and the coordinators of every region.
/// - The sending device is the coordinator's own registered device, approved, or approving
///   itself in this upload (the first coordinator); the sender keys a key names are that
///   device's registered keys, so a device can tell which coordinator's device wrapped it.
/// - A key goes only to a registered, unrevoked device, for a region its token covers, at an
///   epoch that exists or is the next one (a new epoch starts when its first key arrives).
public enum KeyAuthorizer {
    public struct Plan: Sendable {
        public var keys: [(key: WrappedKey, wrapped: [UInt8])]
        public var approve: [String]
        /// Regions whose current epoch moves forward.
        public var newEpochs: [String: UInt32]
        /// The sender's new roster (opaque to the server; devices check its signature).
        public var roster: [UInt8]?
    }

    public static func authorize(_ upload: KeyUploadRequest, token: TokenInfo, devices: [String: DeviceInfo],
                                 epochs: [String: UInt32]) throws(ServerError) -> Plan {
        try requireCoordinator(token)
        guard upload.keys.count <= KeyLimits.maxKeys, upload.approve.count <= KeyLimits.maxKeys else {
            throw ServerError(.contentTooLarge, "too_many_keys", "at most \(KeyLimits.maxKeys) keys and approvals per request")
        }
        guard let me = devices[token.name], me.state != .revoked else {
            throw ServerError(.conflict, "device_not_registered",
                "the coordinator's own device is not registered (or was revoked); run `fieldbook sync` with this token first")
        }
        guard me.state == .approved || upload.approve.contains(token.name) else {
            throw ServerError(.forbidden, "device_not_approved", "the coordinator's device \"\(token.name)\" is not approved yet")
        }
        var plan = Plan(keys: [], approve: [], newEpochs: [:])
        if let r = upload.roster {
            guard r.utf8.count <= 100_000, let bytes = Data(base64Encoded: r) else {
                throw ServerError.badRequest("invalid", "roster: a signed roster in base64 (at most about 70 KB)")
            }
            plan.roster = [UInt8](bytes)
        }
        for name in upload.approve {
            guard let d = devices[name] else { throw ServerError(.notFound, "device_not_found", "no device registered under \"\(name.prefix(100))\"") }
            guard d.state != .revoked else { throw ServerError(.conflict, "device_revoked", "device \"\(name)\" is revoked; it cannot be approved again") }
            try requireScope(token, over: d, "approve")
            if !plan.approve.contains(name) { plan.approve.append(name) }
        }
        for (i, k) in upload.keys.enumerated() {
            let at = "keys[\(i)]"
            guard k.sender == token.name, k.senderAgreement == me.agreement, k.senderSigning == me.signing else {
                throw ServerError(.forbidden, "sender_mismatch",
                    "\(at): a key names its sender's registered device keys; this token's device is \"\(token.name)\"")
            }
            guard let d = devices[k.device] else {
                throw ServerError(.notFound, "device_not_found", "\(at): no device registered under \"\(k.device.prefix(100))\"")
            }
            guard d.state != .revoked else { throw ServerError(.conflict, "device_revoked", "\(at): device \"\(k.device)\" is revoked") }
            guard Checks.isRegion(k.region) else { throw ServerError.badRequest("invalid", "\(at).region: \"\(k.region.prefix(80))\" is not a region name") }
            guard covers(token, k.region) else {
                throw ServerError(.forbidden, "region_not_allowed",
                    "\(at): this coordinator's token covers \(token.regions.joined(separator: ", ")); it may not deliver keys of region \"\(k.region)\"")
            }
            guard d.regions.contains(k.region) || (d.coordinator && d.regions.contains(SyncProtocol.allRegions)) else {
                throw ServerError(.forbidden, "region_not_allowed",
                    "\(at): device \"\(k.device)\" has no token for region \"\(k.region)\"; its token covers \(d.regions.joined(separator: ", "))")
            }
            let current = plan.newEpochs[k.region] ?? epochs[k.region] ?? 0
            guard k.epoch >= 1, k.epoch <= current + 1 else {
                throw ServerError(.conflict, "epoch_out_of_order",
                    "\(at): region \(k.region) is at key epoch \(current); a key may be for an epoch up to \(current + 1)")
            }
            if k.epoch == current + 1 { plan.newEpochs[k.region] = k.epoch }
            guard k.wrapped.utf8.count <= 200, let bytes = Data(base64Encoded: k.wrapped), bytes.count == 80 else {
                throw ServerError.badRequest("invalid", "\(at).wrapped: a wrapped key is 80 bytes in base64")
            }
            plan.keys.append((k, [UInt8](bytes)))
        }
        return plan
    }

    /// Decides a revocation: a coordinator revokes a registered device.
    public static func revoke(_ name: String, token: TokenInfo, devices: [String: DeviceInfo]) throws(ServerError) {
        try requireCoordinator(token)
        guard let d = devices[name] else { throw ServerError(.notFound, "device_not_found", "no device registered under \"\(name.prefix(100))\"") }
        try requireScope(token, over: d, "revoke")
    }

    /// Whether a coordinator token covers `region` (`*` covers every region).
    static func covers(_ token: TokenInfo, _ region: String) -> Bool {
        token.regions.contains(SyncProtocol.allRegions) || token.regions.contains(region)
    }

    /// A coordinator acts on a device only when its token covers every region of the device's
    /// (a device of every region only for a coordinator of every region).
    static func requireScope(_ token: TokenInfo, over d: DeviceInfo, _ what: String) throws(ServerError) {
        guard !d.regions.isEmpty, d.regions.allSatisfy({ covers(token, $0) }) else {
            throw ServerError(.forbidden, "region_not_allowed",
                "this coordinator's token covers \(token.regions.joined(separator: ", ")); it may not \(what) device \"\(d.device.prefix(100))\" of \(d.regions.joined(separator: ", "))")
        }
    }

    /// The devices a coordinator token may see: those that share a region with it, and the
    /// coordinators of every region (a new key epoch of its regions goes to them too).
    public static func visible(_ devices: [DeviceInfo], to token: TokenInfo) throws(ServerError) -> [DeviceInfo] {
        try requireCoordinator(token)
        if token.regions.contains(SyncProtocol.allRegions) { return devices }
        return devices.filter { d in d.regions.contains(SyncProtocol.allRegions) || d.regions.contains { covers(token, $0) } }
    }

    static func requireCoordinator(_ token: TokenInfo) throws(ServerError) {
        guard token.coordinator else {
            throw ServerError(.forbidden, "coordinator_only", "only a coordinator's token may list, approve or revoke devices and deliver keys")
        }
    }

    /// Checks a device's registration as it arrives.
    public static func registration(_ r: DeviceRegistration) throws(ServerError) -> (agreement: [UInt8], signing: [UInt8]) {
        guard r.agreement.utf8.count <= 64, r.signing.utf8.count <= 64,
              let a = Data(base64Encoded: r.agreement), let s = Data(base64Encoded: r.signing), a.count == 32, s.count == 32
        else {
            throw ServerError.badRequest("invalid", "agreement and signing are 32-byte public keys (X25519, Ed25519) in base64")
        }
        return ([UInt8](a), [UInt8](s))
    }
}
