package wire

import "strconv"

// Names follow the RFCs and the IANA "IKEv2 Parameters" registry; a value
// without a name prints as its Go type and number, e.g. "NotifyType(12345)".

func unknownName(typ string, v uint64) string {
	return typ + "(" + strconv.FormatUint(v, 10) + ")"
}

// String returns the registry name of ExchangeType, e.g. for logs.
func (e ExchangeType) String() string {
	switch e {
	case ExchangeIKESAInit:
		return "IKE_SA_INIT"
	case ExchangeIKEAuth:
		return "IKE_AUTH"
	case ExchangeCreateChildSA:
		return "CREATE_CHILD_SA"
	case ExchangeInformational:
		return "INFORMATIONAL"
	case ExchangeIKESessionResume:
		return "IKE_SESSION_RESUME"
	case ExchangeIKEIntermediate:
		return "IKE_INTERMEDIATE"
	case ExchangeIKEFollowupKE:
		return "IKE_FOLLOWUP_KE"
	}
	return unknownName("ExchangeType", uint64(e))
}

// String returns the RFC 7296 notation of the payload (SA, KE, IDi, N, SK, ...).
func (t PayloadType) String() string {
	switch t {
	case PayloadNone:
		return "NONE"
	case PayloadSA:
		return "SA"
	case PayloadKE:
		return "KE"
	case PayloadIDi:
		return "IDi"
	case PayloadIDr:
		return "IDr"
	case PayloadCERT:
		return "CERT"
	case PayloadCERTREQ:
		return "CERTREQ"
	case PayloadAUTH:
		return "AUTH"
	case PayloadNonce:
		return "Nonce"
	case PayloadNotify:
		return "N"
	case PayloadDelete:
		return "D"
	case PayloadVendorID:
		return "V"
	case PayloadTSi:
		return "TSi"
	case PayloadTSr:
		return "TSr"
	case PayloadSK:
		return "SK"
	case PayloadCP:
		return "CP"
	case PayloadEAP:
		return "EAP"
	case PayloadSKF:
		return "SKF"
	}
	return unknownName("PayloadType", uint64(t))
}

// String returns the registry name of ProtocolID, e.g. for logs.
func (p ProtocolID) String() string {
	switch p {
	case ProtocolNone:
		return "NONE"
	case ProtocolIKE:
		return "IKE"
	case ProtocolAH:
		return "AH"
	case ProtocolESP:
		return "ESP"
	}
	return unknownName("ProtocolID", uint64(p))
}

// String returns the registry name of TransformType, e.g. for logs.
func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformKE:
		return "KE"
	case TransformESN:
		return "ESN"
	}
	if t >= TransformADDKE1 && t <= TransformADDKE7 {
		return "ADDKE" + strconv.Itoa(int(t-TransformADDKE1+1))
	}
	return unknownName("TransformType", uint64(t))
}

// TransformIDString names transform ID id of transform type t, e.g.
// TransformIDString(TransformADDKE1, KEMLKEM768) is "ML_KEM_768". Unknown IDs
// print as the type and number, e.g. "ENCR(99)".
func TransformIDString(t TransformType, id uint16) string {
	var name string
	switch {
	case t == TransformENCR:
		name = encrNames[id]
	case t == TransformPRF:
		name = prfNames[id]
	case t == TransformINTEG:
		name = integNames[id]
	case t == TransformKE || t >= TransformADDKE1 && t <= TransformADDKE7:
		name = keNames[id]
	case t == TransformESN:
		name = esnNames[id]
	}
	if name == "" {
		return unknownName(t.String(), uint64(id))
	}
	return name
}

var (
	encrNames = map[uint16]string{
		EncrAESCBC:           "ENCR_AES_CBC",
		EncrAESCTR:           "ENCR_AES_CTR",
		EncrAESGCM8:          "ENCR_AES_GCM_8",
		EncrAESGCM12:         "ENCR_AES_GCM_12",
		EncrAESGCM16:         "ENCR_AES_GCM_16",
		EncrChaCha20Poly1305: "ENCR_CHACHA20_POLY1305",
	}
	prfNames = map[uint16]string{
		PRFHMACSHA1:    "PRF_HMAC_SHA1",
		PRFHMACSHA2256: "PRF_HMAC_SHA2_256",
		PRFHMACSHA2384: "PRF_HMAC_SHA2_384",
		PRFHMACSHA2512: "PRF_HMAC_SHA2_512",
	}
	integNames = map[uint16]string{
		IntegNone:           "NONE",
		IntegHMACSHA196:     "AUTH_HMAC_SHA1_96",
		IntegHMACSHA2256128: "AUTH_HMAC_SHA2_256_128",
		IntegHMACSHA2384192: "AUTH_HMAC_SHA2_384_192",
		IntegHMACSHA2512256: "AUTH_HMAC_SHA2_512_256",
	}
	keNames = map[uint16]string{
		KENone:       "NONE",
		KEMODP2048:   "MODP_2048",
		KEMODP3072:   "MODP_3072",
		KEMODP4096:   "MODP_4096",
		KEECP256:     "ECP_256",
		KEECP384:     "ECP_384",
		KEECP521:     "ECP_521",
		KECurve25519: "CURVE_25519",
		KECurve448:   "CURVE_448",
		KEMLKEM512:   "ML_KEM_512",
		KEMLKEM768:   "ML_KEM_768",
		KEMLKEM1024:  "ML_KEM_1024",
	}
	esnNames = map[uint16]string{
		ESNNo:  "NO_ESN",
		ESNYes: "ESN",
	}
)

// String returns the registry name of IDType, e.g. for logs.
func (t IDType) String() string {
	switch t {
	case IDIPv4Addr:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822Addr:
		return "ID_RFC822_ADDR"
	case IDIPv6Addr:
		return "ID_IPV6_ADDR"
	case IDDERASN1DN:
		return "ID_DER_ASN1_DN"
	case IDDERASN1GN:
		return "ID_DER_ASN1_GN"
	case IDKeyID:
		return "ID_KEY_ID"
	}
	return unknownName("IDType", uint64(t))
}

// String returns the registry name of AuthMethod, e.g. for logs.
func (m AuthMethod) String() string {
	switch m {
	case AuthRSASig:
		return "RSA Digital Signature"
	case AuthSharedKey:
		return "Shared Key Message Integrity Code"
	case AuthDSS:
		return "DSS Digital Signature"
	case AuthECDSA256:
		return "ECDSA with SHA-256 on the P-256 curve"
	case AuthECDSA384:
		return "ECDSA with SHA-384 on the P-384 curve"
	case AuthECDSA521:
		return "ECDSA with SHA-512 on the P-521 curve"
	case AuthNULL:
		return "NULL Authentication"
	case AuthDigitalSignature:
		return "Digital Signature"
	}
	return unknownName("AuthMethod", uint64(m))
}

// String returns the registry name of HashAlgorithm, e.g. for logs.
func (h HashAlgorithm) String() string {
	switch h {
	case HashSHA1:
		return "SHA1"
	case HashSHA2256:
		return "SHA2-256"
	case HashSHA2384:
		return "SHA2-384"
	case HashSHA2512:
		return "SHA2-512"
	case HashIdentity:
		return "Identity"
	}
	return unknownName("HashAlgorithm", uint64(h))
}

// String returns the registry name of CertEncoding, e.g. for logs.
func (c CertEncoding) String() string {
	switch c {
	case CertX509Signature:
		return "X.509 Certificate - Signature"
	case CertRawRSAKey:
		return "Raw RSA Key"
	case CertHashURLX509:
		return "Hash and URL of X.509 certificate"
	}
	return unknownName("CertEncoding", uint64(c))
}

// String returns the registry name of TSType, e.g. for logs.
func (t TSType) String() string {
	switch t {
	case TSIPv4AddrRange:
		return "TS_IPV4_ADDR_RANGE"
	case TSIPv6AddrRange:
		return "TS_IPV6_ADDR_RANGE"
	}
	return unknownName("TSType", uint64(t))
}

// String returns the registry name of CFGType, e.g. for logs.
func (t CFGType) String() string {
	switch t {
	case CFGRequest:
		return "CFG_REQUEST"
	case CFGReply:
		return "CFG_REPLY"
	case CFGSet:
		return "CFG_SET"
	case CFGAck:
		return "CFG_ACK"
	}
	return unknownName("CFGType", uint64(t))
}

// String returns the registry name of NotifyType, e.g. for logs.
func (n NotifyType) String() string {
	if s, ok := notifyNames[n]; ok {
		return s
	}
	return unknownName("NotifyType", uint64(n))
}

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload:    "UNSUPPORTED_CRITICAL_PAYLOAD",
	NotifyInvalidIKESPI:                 "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion:           "INVALID_MAJOR_VERSION",
	NotifyInvalidSyntax:                 "INVALID_SYNTAX",
	NotifyInvalidMessageID:              "INVALID_MESSAGE_ID",
	NotifyInvalidSPI:                    "INVALID_SPI",
	NotifyNoProposalChosen:              "NO_PROPOSAL_CHOSEN",
	NotifyInvalidKEPayload:              "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed:          "AUTHENTICATION_FAILED",
	NotifySinglePairRequired:            "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs:               "NO_ADDITIONAL_SAS",
	NotifyInternalAddressFailure:        "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired:              "FAILED_CP_REQUIRED",
	NotifyTSUnacceptable:                "TS_UNACCEPTABLE",
	NotifyInvalidSelectors:              "INVALID_SELECTORS",
	NotifyTemporaryFailure:              "TEMPORARY_FAILURE",
	NotifyChildSANotFound:               "CHILD_SA_NOT_FOUND",
	NotifyStateNotFound:                 "STATE_NOT_FOUND",
	NotifyInitialContact:                "INITIAL_CONTACT",
	NotifySetWindowSize:                 "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible:          "ADDITIONAL_TS_POSSIBLE",
	NotifyIPCompSupported:               "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP:          "NAT_DETECTION_SOURCE_IP",
	NotifyNATDetectionDestinationIP:     "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie:                        "COOKIE",
	NotifyUseTransportMode:              "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported:       "HTTP_CERT_LOOKUP_SUPPORTED",
	NotifyRekeySA:                       "REKEY_SA",
	NotifyESPTFCPaddingNotSupported:     "ESP_TFC_PADDING_NOT_SUPPORTED",
	NotifyNonFirstFragmentsAlso:         "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMOBIKESupported:               "MOBIKE_SUPPORTED",
	NotifyIKEv2FragmentationSupported:   "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:       "SIGNATURE_HASH_ALGORITHMS",
	NotifyUsePPK:                        "USE_PPK",
	NotifyPPKIdentity:                   "PPK_IDENTITY",
	NotifyNoPPKAuth:                     "NO_PPK_AUTH",
	NotifyIntermediateExchangeSupported: "INTERMEDIATE_EXCHANGE_SUPPORTED",
	NotifyIP4Allowed:                    "IP4_ALLOWED",
	NotifyIP6Allowed:                    "IP6_ALLOWED",
	NotifyAdditionalKeyExchange:         "ADDITIONAL_KEY_EXCHANGE",
	NotifyUseAggfrag:                    "USE_AGGFRAG",
	NotifySupportedAuthMethods:          "SUPPORTED_AUTH_METHODS",
	NotifyUsePPKInt:                     "USE_PPK_INT",
	NotifyPPKIdentityKey:                "PPK_IDENTITY_KEY",
}
