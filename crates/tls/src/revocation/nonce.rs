//! The OCSP nonce extension (RFC 6960 4.4.1, RFC 8954), which the `openssl` crate does
//! not bind: adding it to a DER request built by OpenSSL, and finding it in a DER
//! response. The response side reads the same bytes whose signature OpenSSL verifies
//! (DER has one encoding per value), so the nonce found here is covered by it.

use crate::der::{
    self, context, tlv, tlv_of, DerError, Reader, TAG_BOOLEAN, TAG_ENUMERATED, TAG_OCTET_STRING,
    TAG_OID, TAG_SEQUENCE,
};
use crate::TlsError;

/// id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2.
const ARCS_NONCE: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
const ARCS_BASIC: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1];

/// Nonce sizes RFC 8954 allows.
pub const NONCE_LEN_RANGE: std::ops::RangeInclusive<usize> = 1..=32;

fn ocsp_err(what: &'static str) -> impl Fn(DerError) -> TlsError {
    move |e| TlsError::Ocsp(format!("{what}: {e}"))
}

/// The extnValue octets this crate puts in a request for `nonce`: an OCTET STRING
/// holding the nonce (RFC 8954 2.1; also what `openssl ocsp` sends and echoes).
pub fn nonce_extension_value(nonce: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, nonce)
}

/// Adds a nonce request extension to `request_der`, a DER OCSPRequest without
/// requestExtensions (what `OcspRequest::to_der` produces).
pub fn request_with_nonce(request_der: &[u8], nonce: &[u8]) -> Result<Vec<u8>, TlsError> {
    if !NONCE_LEN_RANGE.contains(&nonce.len()) {
        return Err(TlsError::Ocsp(format!(
            "nonce must be 1..=32 bytes, got {}",
            nonce.len()
        )));
    }
    let err = ocsp_err("OCSP request");
    // OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT .. OPTIONAL }
    let mut top = Reader::new(request_der).map_err(&err)?;
    let request = top.expect(TAG_SEQUENCE).map_err(&err)?;
    if !top.is_empty() {
        return Err(err(DerError::Unexpected));
    }
    let mut fields = Reader::new(request).map_err(&err)?;
    let tbs = fields.expect(TAG_SEQUENCE).map_err(&err)?;
    let signature = fields.remaining();
    // TBSRequest ::= SEQUENCE { version [0], requestorName [1], requestList SEQUENCE OF,
    //                           requestExtensions [2] EXPLICIT Extensions OPTIONAL }
    let mut tbs_fields = Reader::new(tbs).map_err(&err)?;
    while let Some(field) = tbs_fields.next_tlv().map_err(&err)? {
        if field.tag == context(2) {
            return Err(TlsError::Ocsp("OCSP request already has extensions".into()));
        }
    }
    let extension = tlv_of(
        TAG_SEQUENCE,
        &[
            &der::oid(&ARCS_NONCE),
            &tlv(TAG_OCTET_STRING, &nonce_extension_value(nonce)),
        ],
    );
    let extensions = tlv(context(2), &tlv(TAG_SEQUENCE, &extension));
    let tbs = tlv_of(TAG_SEQUENCE, &[tbs, &extensions]);
    Ok(tlv_of(TAG_SEQUENCE, &[&tbs, signature]))
}

/// The nonce extension value (extnValue octets) of a DER OCSPResponse, `None` when the
/// response carries no nonce or no response bytes (non-successful status).
pub fn response_nonce(response_der: &[u8]) -> Result<Option<Vec<u8>>, TlsError> {
    let err = ocsp_err("OCSP response");
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
    //                             responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
    let mut top = Reader::new(response_der).map_err(&err)?;
    let response = top.expect(TAG_SEQUENCE).map_err(&err)?;
    if !top.is_empty() {
        return Err(err(DerError::Unexpected));
    }
    let mut fields = Reader::new(response).map_err(&err)?;
    fields.expect(TAG_ENUMERATED).map_err(&err)?;
    let Some(bytes) = fields.next_tlv().map_err(&err)? else {
        return Ok(None);
    };
    if bytes.tag != context(0) || !fields.is_empty() {
        return Err(err(DerError::Unexpected));
    }
    // ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }
    let mut rb = Reader::new(bytes.content).map_err(&err)?;
    let mut rb = Reader::new(rb.expect(TAG_SEQUENCE).map_err(&err)?).map_err(&err)?;
    let kind = rb.expect(TAG_OID).map_err(&err)?;
    if tlv(TAG_OID, kind) != der::oid(&ARCS_BASIC) {
        return Err(TlsError::Ocsp(
            "OCSP response: not a basic OCSP response".into(),
        ));
    }
    let basic = rb.expect(TAG_OCTET_STRING).map_err(&err)?;
    // BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm,
    //                                  signature BIT STRING, certs [0] EXPLICIT .. OPTIONAL }
    let mut basic = Reader::new(basic).map_err(&err)?;
    let basic = basic.expect(TAG_SEQUENCE).map_err(&err)?;
    let data = Reader::new(basic)
        .map_err(&err)?
        .expect(TAG_SEQUENCE)
        .map_err(&err)?;
    // ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID CHOICE
    //   { byName [1], byKey [2] }, producedAt GeneralizedTime, responses SEQUENCE OF,
    //   responseExtensions [1] EXPLICIT Extensions OPTIONAL }
    // byName and responseExtensions share tag [1]; only the one after `responses`
    // (the first SEQUENCE) is the extensions.
    let mut data = Reader::new(data).map_err(&err)?;
    let mut seen_responses = false;
    let mut extensions = None;
    while let Some(field) = data.next_tlv().map_err(&err)? {
        if field.tag == TAG_SEQUENCE {
            seen_responses = true;
        } else if field.tag == context(1) && seen_responses {
            extensions = Some(field.content);
        }
    }
    let Some(extensions) = extensions else {
        return Ok(None);
    };
    let mut list = Reader::new(extensions).map_err(&err)?;
    let mut list = Reader::new(list.expect(TAG_SEQUENCE).map_err(&err)?).map_err(&err)?;
    let nonce_oid = der::oid(&ARCS_NONCE);
    let mut found = None;
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    while let Some(ext) = list.next_tlv().map_err(&err)? {
        if ext.tag != TAG_SEQUENCE {
            return Err(err(DerError::Unexpected));
        }
        let mut parts = Reader::new(ext.content).map_err(&err)?;
        let id = parts.expect(TAG_OID).map_err(&err)?;
        let mut value = parts
            .next_tlv()
            .map_err(&err)?
            .ok_or(DerError::Unexpected)
            .map_err(&err)?;
        if value.tag == TAG_BOOLEAN {
            value = parts
                .next_tlv()
                .map_err(&err)?
                .ok_or(DerError::Unexpected)
                .map_err(&err)?;
        }
        if value.tag != TAG_OCTET_STRING || !parts.is_empty() {
            return Err(err(DerError::Unexpected));
        }
        if tlv(TAG_OID, id) == nonce_oid {
            if found.is_some() {
                // Two nonces: which one would the signer have meant?
                return Err(TlsError::Ocsp("OCSP response: two nonce extensions".into()));
            }
            found = Some(value.content.to_vec());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DER OCSPRequest as OpenSSL builds it: one Request with a CertID.
    fn openssl_request() -> Vec<u8> {
        use openssl::hash::MessageDigest;
        use openssl::ocsp::{OcspCertId, OcspRequest};
        let ca = crate::pki::generate_ca("CA", 1).unwrap();
        let leaf = crate::pki::issue_client_cert(&ca, "leaf", 1).unwrap();
        let ca = openssl::x509::X509::from_der(&ca.cert_der).unwrap();
        let leaf = openssl::x509::X509::from_der(&leaf.cert_der).unwrap();
        let id = OcspCertId::from_cert(MessageDigest::sha1(), &leaf, &ca).unwrap();
        let mut req = OcspRequest::new().unwrap();
        req.add_id(id).unwrap();
        req.to_der().unwrap()
    }

    #[test]
    fn nonce_request_is_parsed_back_by_openssl() {
        let plain = openssl_request();
        let with = request_with_nonce(&plain, &[0xab; 16]).unwrap();
        // OpenSSL's own parser accepts the result and re-encodes it byte for byte, so
        // the splice produced canonical DER.
        let parsed = openssl::ocsp::OcspRequest::from_der(&with).unwrap();
        assert_eq!(parsed.to_der().unwrap(), with);
        assert!(with.len() > plain.len());
        let needle = [&[0x04, 0x12, 0x04, 0x10][..], &[0xab; 16]].concat();
        assert!(with.windows(needle.len()).any(|w| w == needle.as_slice()));
        // A second nonce is refused rather than producing an ambiguous request.
        assert!(request_with_nonce(&with, &[1]).is_err());
        assert!(request_with_nonce(&plain, &[]).is_err());
        assert!(request_with_nonce(&plain, &[0; 33]).is_err());
    }

    #[test]
    fn response_without_bytes_has_no_nonce() {
        // OCSPResponse { responseStatus tryLater(3) }.
        assert_eq!(
            response_nonce(&[0x30, 0x03, 0x0a, 0x01, 0x03]).unwrap(),
            None
        );
        assert!(response_nonce(&[0x30, 0x03, 0x0a, 0x01]).is_err());
        assert!(response_nonce(&[]).is_err());
    }

    fn testdata(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/ocsp")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The OpenSSL CLI's nonce (testdata/ocsp/README.md).
    const CLI_NONCE: [u8; 16] = [
        0xa4, 0xe1, 0x0b, 0xd0, 0x76, 0x5b, 0x6f, 0xfa, 0xa0, 0x7f, 0x49, 0xee, 0xbe, 0xa3, 0x93,
        0x83,
    ];

    #[test]
    fn splice_reproduces_the_openssl_cli_request_byte_for_byte() {
        let spliced = request_with_nonce(&testdata("req-no-nonce.der"), &CLI_NONCE).unwrap();
        assert_eq!(spliced, testdata("req-nonce.der"));
    }

    #[test]
    fn finds_the_nonce_the_openssl_cli_responder_echoed() {
        let echoed = response_nonce(&testdata("resp-nonce.der")).unwrap();
        assert_eq!(echoed, Some(nonce_extension_value(&CLI_NONCE)));
        assert_eq!(
            response_nonce(&testdata("resp-no-nonce.der")).unwrap(),
            None
        );
        // A request is not a response.
        assert!(response_nonce(&testdata("req-nonce.der")).is_err());
    }

    #[test]
    fn nonce_value_encoding() {
        assert_eq!(nonce_extension_value(&[1, 2, 3]), [0x04, 0x03, 1, 2, 3]);
    }
}
