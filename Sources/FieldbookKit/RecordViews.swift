import FieldbookModel

/// A source as shown and exported.
public struct SourceView: Codable, Sendable, Equatable {
    public var id: String
    public var outlet: String?
    public var url: String?
    public var published: String?
    public var reliability: String?
}

/// An incident with its charges and sources.
public struct IncidentView: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    public var person_id: String
    public var person_name: String?
    public var kind: String
    public var date: String
    public var date_text: String?
    public var place_region: String?
    public var settlement: String?
    public var facility: String?
    public var authority: String?
    public var sentence_kind: String?
    public var sentence_term: String?
    public var fine_amount: String?
    public var fine_unit: String?
    public var description: String?
    public var verification: String?
    public var ref: String?
    /// Charges written as `CC 405.1`.
    public var charges: [String]
    public var charge_ids: [String]
    public var sources: [SourceView]
}

/// A person with aliases and incidents. A person others were merged into carries their names
/// among its aliases (`alias_ids` then holds the merged person's id), their incidents, and
/// their ids in `merged`.
public struct PersonView: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    public var name: String
    public var aliases: [String]
    public var alias_ids: [String]
    public var born: String?
    public var sex: String?
    public var occupation: String?
    public var affiliation: String?
    public var notes: String?
    public var incidents: [IncidentView]
    /// The persons merged into this one (`fieldbook persons unmerge ID` undoes each).
    public var merged: [String] = []
}

extension Dictionary where Key == String, Value == FieldbookModel.Value {
    func text(_ k: String) -> String? { self[k]?.text }
}
