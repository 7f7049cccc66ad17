import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reading and writing JSON bodies, gzip-compressed when the peer says so.
enum HTTPBody {
    static let contentEncoding = HTTPField.Name("Content-Encoding")!
    static let acceptEncoding = HTTPField.Name("Accept-Encoding")!

    /// The request body, decompressed if it is gzip; at most `maxBytes` either way.
    static func read(_ request: Request, maxBytes: Int) async throws -> Data {
        var buffer = try await request.body.collect(upTo: maxBytes)
        if let enc = request.headers[contentEncoding]?.lowercased(), enc != "identity" {
            guard enc == "gzip" else {
                throw ServerError(.unsupportedMediaType, "unsupported_encoding", "Content-Encoding \"\(enc)\" is not supported; send gzip or none")
            }
            do {
                buffer = try buffer.decompress(with: .gzip(), maxSize: maxBytes)
            } catch let e as CompressNIOError where e == .bufferOverflow {
                throw ServerError(.contentTooLarge, "too_large", "the decompressed body is larger than \(maxBytes) bytes; send smaller batches")
            } catch {
                throw ServerError.badRequest("malformed", "the body is not valid gzip: \(error)")
            }
        }
        return Data(buffer.readableBytesView)
    }

    /// A JSON response, gzip-compressed when the request accepts gzip and the body is large enough to gain.
    static func json<T: Encodable>(_ value: T, for request: Request, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        var buffer = ByteBuffer(bytes: data)
        if data.count > 1024, request.headers[acceptEncoding]?.lowercased().contains("gzip") == true {
            buffer = try buffer.compress(with: .gzip())
            headers[contentEncoding] = "gzip"
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }
}
