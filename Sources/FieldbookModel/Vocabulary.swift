/// A closed list of allowed values (a controlled vocabulary).
///
/// Parsing is exact (no case folding): an unknown value is rejected with a message that lists
/// every allowed value.
public protocol Vocabulary: CaseIterable, RawRepresentable, Sendable, Hashable where RawValue == String {}

extension Vocabulary {
    /// Every allowed value, in declaration order, joined for messages.
    public static var allowedList: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }

    /// Parses `text`, or throws an error naming `field`, the value and the allowed values.
    public static func parse(_ text: String, field: String) throws(ModelError) -> Self {
        if let v = Self(rawValue: text) { return v }
        throw ModelError.invalid(field, text, "is not allowed; allowed values: \(allowedList)")
    }
}

/// What happened to the person (`incident.kind`).
public enum IncidentKind: String, Vocabulary {
    case detention, administrative_arrest, pretrial_custody, house_arrest, search, interrogation
    case summons, charge, verdict, appeal_decision, sentence_change, transfer, release, parole_denied
    case ill_treatment, death_in_custody, psychiatric_confinement, travel_ban, extremism_listing
    case fine, asset_freeze, device_seizure, pressure_on_relatives, attack, civil_lawsuit
    case solitary_confinement, dismissal
}

/// The body that acted (`incident.authority`).
public enum Authority: String, Vocabulary {
    case police = "police"
    case knb = "KNB"
    case prosecutor = "prosecutor"
    case court = "court"
    case prisonAdministration = "prison administration"
    case localExecutive = "local executive"
    case unknown = "unknown"
}

/// The penalty imposed (`incident.sentence_kind`).
public enum SentenceKind: String, Vocabulary {
    case imprisonment, restricted_freedom, probation, fine, administrative_arrest
    case community_service, activity_ban, compulsory_treatment
}

/// The unit of `incident.fine_amount`: tenge, euro, or the monthly calculation index.
public enum FineUnit: String, Vocabulary {
    case KZT, EUR, MCI
}

/// How reliable a source is (`source.reliability`).
public enum Reliability: String, Vocabulary {
    case high, usually_reliable, fairly_reliable, unknown
}

/// How well a fact is established (`incident.verification`).
public enum Verification: String, Vocabulary {
    case confirmed, likely, possible, unknown
}

/// `person.sex`.
public enum Sex: String, Vocabulary {
    case f, m
}

/// The code a charge is brought under (`charge.code`): Criminal Code or Code of Administrative Offences.
public enum LegalCode: String, Vocabulary {
    case CC, CoAO
}
