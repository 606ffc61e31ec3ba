internal import COpenSSL
import Foundation

/// The AES-256-CBC key and IV a subscription ack hands out for a tr_id.
///
/// KIS sends both as ASCII strings (32 and 16 characters) that are used as raw bytes, never base64- or hex-decoded
/// (protocol reference §11).
public struct AESKey: Sendable, Equatable {
    let key: [UInt8]
    let iv: [UInt8]

    /// Builds a key from the ack's `output.key` and `output.iv`; throws `badKey` unless they are 32 and 16 bytes.
    public init(key: String, iv: String) throws(FrameError) {
        let k = Array(key.utf8)
        let v = Array(iv.utf8)
        guard k.count == 32, v.count == 16 else {
            throw FrameError(.badKey, "AES key must be 32 bytes and IV 16 bytes, got \(k.count) and \(v.count)")
        }
        self.key = k
        self.iv = v
    }

    /// Decodes a base64 payload and decrypts it with AES-256-CBC, removing PKCS#7 padding.
    public func decrypt(base64 text: String) throws(FrameError) -> [UInt8] {
        var text = text
        let result = text.withUTF8 { p in Result { () throws(FrameError) -> [UInt8] in try decrypt(base64: p) } }
        return try result.get()
    }

    func decrypt(base64 payload: UnsafeBufferPointer<UInt8>) throws(FrameError) -> [UInt8] {
        guard let data = Data(base64Encoded: Data(buffer: payload)), !data.isEmpty else {
            throw FrameError(.badBase64, "encrypted payload is not valid base64 (\(payload.count) bytes)")
        }
        return try decrypt(ciphertext: [UInt8](data))
    }

    /// Decrypts raw AES-256-CBC ciphertext and removes PKCS#7 padding.
    public func decrypt(ciphertext: [UInt8]) throws(FrameError) -> [UInt8] {
        guard ciphertext.count % 16 == 0 else {
            throw FrameError(.decryptFailed, "ciphertext length \(ciphertext.count) is not a multiple of 16")
        }
        guard let context = EVP_CIPHER_CTX_new() else {
            throw FrameError(.decryptFailed, "OpenSSL could not allocate a cipher context")
        }
        defer { EVP_CIPHER_CTX_free(context) }
        var output = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                output.withUnsafeMutableBufferPointer { out -> Bool in
                    guard EVP_DecryptInit_ex(context, EVP_aes_256_cbc(), nil, k.baseAddress, v.baseAddress) == 1,
                        EVP_DecryptUpdate(context, out.baseAddress, &written, ciphertext, Int32(ciphertext.count)) == 1,
                        EVP_DecryptFinal_ex(context, out.baseAddress! + Int(written), &final) == 1
                    else { return false }
                    return true
                }
            }
        }
        guard ok else {
            ERR_clear_error()
            throw FrameError(.decryptFailed, "AES-256-CBC decryption failed (wrong key/IV or bad padding)")
        }
        output.removeSubrange(Int(written + final)...)
        return output
    }

    /// Encrypts with AES-256-CBC and PKCS#7 padding and returns standard base64: what the KIS server sends.
    public func encryptToBase64(_ plaintext: [UInt8]) -> String {
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("OpenSSL could not allocate a cipher context") }
        defer { EVP_CIPHER_CTX_free(context) }
        var output = [UInt8](repeating: 0, count: plaintext.count + 32)
        var written: Int32 = 0
        var final: Int32 = 0
        key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                output.withUnsafeMutableBufferPointer { out in
                    precondition(EVP_EncryptInit_ex(context, EVP_aes_256_cbc(), nil, k.baseAddress, v.baseAddress) == 1)
                    precondition(EVP_EncryptUpdate(context, out.baseAddress, &written, plaintext, Int32(plaintext.count)) == 1)
                    precondition(EVP_EncryptFinal_ex(context, out.baseAddress! + Int(written), &final) == 1)
                }
            }
        }
        return Data(output[0..<Int(written + final)]).base64EncodedString()
    }
}
