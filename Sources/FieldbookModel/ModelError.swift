/// The one error type of the model module: a value, field, table or record that is not acceptable.
///
/// Every case names the field (or table) and the offending value, and says what is allowed.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A value that does not fit the field (`field` names it).
        case invalidValue
        /// A field that the table does not have.
        case unknownField
        /// A table that the schema does not have.
        case unknownTable
        /// A required field is missing or empty.
        case missingField
        /// A combination of fields that is not allowed.
        case inconsistent
        /// A message that holds more than the receiver accepts.
        case tooLarge
        /// A sealed cell where a replica expects a clear value.
        case sealedValue
        /// A clear value where a server keeps only sealed cells.
        case notSealed
    }

    public var kind: Kind
    /// `table.field` or just `field`.
    public var field: String
    /// The rejected value, as given.
    public var value: String?
    /// What is wrong and what is allowed.
    public var reason: String

    public init(_ kind: Kind, field: String, value: String? = nil, reason: String) {
        self.kind = kind
        self.field = field
        self.value = value
        self.reason = reason
    }

    public static func invalid(_ field: String, _ value: String, _ reason: String) -> ModelError {
        ModelError(.invalidValue, field: field, value: value, reason: reason)
    }

    /// The same error, with the field name prefixed by a table or record name.
    public func inTable(_ table: String) -> ModelError {
        var e = self
        if !e.field.contains(".") { e.field = "\(table).\(e.field)" }
        return e
    }

    public var description: String {
        if let value {
            return "\(field): \"\(value)\" \(reason)"
        }
        return "\(field): \(reason)"
    }
}
