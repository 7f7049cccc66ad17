/// The messages of device enrolment and key delivery (docs/PROTOCOL.md, "Keys"). Keys travel
/// in base64; the server stores and relays them and reads none of them.

/// `PUT /v1/device`: the device's public keys, bound to the token that sends them.
public struct DeviceRegistration: Codable, Sendable, Equatable {
    /// X25519 public key (32 bytes, base64): region keys are wrapped to it.
    public var agreement: String
    /// Ed25519 public key (32 bytes, base64): reserved for signatures (offline bundles).
    public var signing: String

    public init(agreement: String, signing: String) {
        self.agreement = agreement
        self.signing = signing
    }
}

/// A registered device as the server knows it. `device` is its token's name.
public struct DeviceInfo: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case pending, approved, revoked }
    public var device: String
    public var regions: [String]
    public var coordinator: Bool
    public var agreement: String
    public var signing: String
    public var state: State
    public var registeredAt: String
    /// The coordinator (token name) who approved or revoked it.
    public var decidedBy: String?

    public init(device: String, regions: [String], coordinator: Bool, agreement: String, signing: String, state: State,
                registeredAt: String, decidedBy: String? = nil) {
        self.device = device
        self.regions = regions
        self.coordinator = coordinator
        self.agreement = agreement
        self.signing = signing
        self.state = state
        self.registeredAt = registeredAt
        self.decidedBy = decidedBy
    }

    enum CodingKeys: String, CodingKey {
        case device, regions, coordinator, agreement, signing, state
        case registeredAt = "registered_at"
        case decidedBy = "decided_by"
    }
}

/// `GET /v1/devices`.
public struct DeviceListResponse: Codable, Sendable {
    public var devices: [DeviceInfo]
    public init(devices: [DeviceInfo]) { self.devices = devices }
}

/// A region key wrapped for one device by one coordinator's device.
public struct WrappedKey: Codable, Sendable, Equatable {
    public var device: String
    public var region: String
    public var epoch: UInt32
    /// HPKE encapsulated key and sealed region key (80 bytes, base64).
    public var wrapped: String
    /// The coordinator (token name) whose device wrapped it, and that device's public keys.
    public var sender: String
    public var senderAgreement: String
    public var senderSigning: String

    public init(device: String, region: String, epoch: UInt32, wrapped: String, sender: String, senderAgreement: String, senderSigning: String) {
        self.device = device
        self.region = region
        self.epoch = epoch
        self.wrapped = wrapped
        self.sender = sender
        self.senderAgreement = senderAgreement
        self.senderSigning = senderSigning
    }

    enum CodingKeys: String, CodingKey {
        case device, region, epoch, wrapped, sender
        case senderAgreement = "sender_agreement"
        case senderSigning = "sender_signing"
    }
}

/// `POST /v1/keys` (coordinators): keys to deliver, the devices this approves, and the
/// sender's signed roster of the coordinators it vouches for (base64; replaces its earlier one).
public struct KeyUploadRequest: Codable, Sendable {
    public var keys: [WrappedKey]
    public var approve: [String]
    public var roster: String?

    public init(keys: [WrappedKey], approve: [String] = [], roster: String? = nil) {
        self.keys = keys
        self.approve = approve
        self.roster = roster
    }
}

/// `GET /v1/keys`: this token's device, the keys wrapped for it, and each region's current epoch.
public struct KeysResponse: Codable, Sendable {
    public var device: DeviceInfo?
    public var keys: [WrappedKey]
    public var epochs: [String: UInt32]
    /// Every coordinator's latest signed roster (base64), for the device to check.
    public var rosters: [String]

    public init(device: DeviceInfo?, keys: [WrappedKey], epochs: [String: UInt32], rosters: [String] = []) {
        self.device = device
        self.keys = keys
        self.epochs = epochs
        self.rosters = rosters
    }

    enum CodingKeys: String, CodingKey { case device, keys, epochs, rosters }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        device = try c.decodeIfPresent(DeviceInfo.self, forKey: .device)
        keys = try c.decode([WrappedKey].self, forKey: .keys)
        epochs = try c.decode([String: UInt32].self, forKey: .epochs)
        rosters = try c.decodeIfPresent([String].self, forKey: .rosters) ?? []
    }
}

/// `POST /v1/devices/revoke` (coordinators).
public struct DeviceRevokeRequest: Codable, Sendable {
    public var device: String
    public init(device: String) { self.device = device }
}

public enum KeyLimits {
    /// Most keys one upload or answer may carry.
    public static let maxKeys = 10_000
    /// Longest token (device) name.
    public static let maxDeviceBytes = 100
}

/// The answer to `POST /v1/keys`.
public struct KeyUploadResponse: Codable, Sendable {
    public var stored: Int
    public init(stored: Int) { self.stored = stored }
}
