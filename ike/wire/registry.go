// This file holds the IANA code points the codec and the layers above share.
// See RFC 7296 Section 3 and the IANA "IKEv2 Parameters" registry.

package wire

// ExchangeType is the Exchange Type of the IKE header (RFC 7296 Section 3.1).
type ExchangeType uint8

// Exchange types.
const (
	ExchangeIKESAInit        ExchangeType = 34 // RFC 7296
	ExchangeIKEAuth          ExchangeType = 35 // RFC 7296
	ExchangeCreateChildSA    ExchangeType = 36 // RFC 7296
	ExchangeInformational    ExchangeType = 37 // RFC 7296
	ExchangeIKESessionResume ExchangeType = 38 // RFC 5723
	ExchangeIKEIntermediate  ExchangeType = 43 // RFC 9242
	ExchangeIKEFollowupKE    ExchangeType = 44 // RFC 9370
)

// Header flags (RFC 7296 Section 3.1).
const (
	FlagInitiator uint8 = 0x08
	FlagVersion   uint8 = 0x10
	FlagResponse  uint8 = 0x20
)

// PayloadType is a Next Payload value (RFC 7296 Section 3.2).
type PayloadType uint8

// Payload types.
const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCERT     PayloadType = 37
	PayloadCERTREQ  PayloadType = 38
	PayloadAUTH     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadSKF      PayloadType = 53 // RFC 7383
)

// ProtocolID identifies the protocol of a proposal, notify or delete
// (RFC 7296 Section 3.3.1).
type ProtocolID uint8

// Protocol IDs.
const (
	ProtocolNone ProtocolID = 0
	ProtocolIKE  ProtocolID = 1
	ProtocolAH   ProtocolID = 2
	ProtocolESP  ProtocolID = 3
)

// TransformType is the Transform Type of a transform substructure
// (RFC 7296 Section 3.3.2, RFC 9370 Section 2.2.1).
type TransformType uint8

// Transform types. Type 4 was renamed "Key Exchange Method" by RFC 9370,
// which also added the Additional Key Exchange types 6..12.
const (
	TransformENCR   TransformType = 1
	TransformPRF    TransformType = 2
	TransformINTEG  TransformType = 3
	TransformKE     TransformType = 4
	TransformESN    TransformType = 5
	TransformADDKE1 TransformType = 6
	TransformADDKE2 TransformType = 7
	TransformADDKE3 TransformType = 8
	TransformADDKE4 TransformType = 9
	TransformADDKE5 TransformType = 10
	TransformADDKE6 TransformType = 11
	TransformADDKE7 TransformType = 12
)

// Encryption algorithm transform IDs (Transform Type 1).
const (
	EncrAESCBC           uint16 = 12 // RFC 3602
	EncrAESCTR           uint16 = 13
	EncrAESGCM8          uint16 = 18 // RFC 5282 / RFC 4106
	EncrAESGCM12         uint16 = 19
	EncrAESGCM16         uint16 = 20
	EncrChaCha20Poly1305 uint16 = 28 // RFC 7634
)

// Pseudorandom function transform IDs (Transform Type 2).
const (
	PRFHMACSHA1    uint16 = 2
	PRFHMACSHA2256 uint16 = 5 // RFC 4868
	PRFHMACSHA2384 uint16 = 6
	PRFHMACSHA2512 uint16 = 7
)

// Integrity algorithm transform IDs (Transform Type 3).
const (
	IntegNone           uint16 = 0
	IntegHMACSHA196     uint16 = 2
	IntegHMACSHA2256128 uint16 = 12 // RFC 4868
	IntegHMACSHA2384192 uint16 = 13
	IntegHMACSHA2512256 uint16 = 14
)

// Key exchange method transform IDs (Transform Types 4 and 6..12).
const (
	KENone       uint16 = 0
	KEMODP2048   uint16 = 14 // RFC 3526
	KEMODP3072   uint16 = 15
	KEMODP4096   uint16 = 16
	KEECP256     uint16 = 19 // RFC 5903
	KEECP384     uint16 = 20
	KEECP521     uint16 = 21
	KECurve25519 uint16 = 31 // RFC 8031
	KECurve448   uint16 = 32
	KEMLKEM512   uint16 = 35 // draft-ietf-ipsecme-ikev2-mlkem
	KEMLKEM768   uint16 = 36
	KEMLKEM1024  uint16 = 37
)

// Extended Sequence Numbers transform IDs (Transform Type 5).
const (
	ESNNo  uint16 = 0
	ESNYes uint16 = 1
)

// AttrKeyLength is the Key Length transform attribute type (RFC 7296
// Section 3.3.5), always sent in TV format.
const AttrKeyLength uint16 = 14

// IDType is the ID Type of an IDi/IDr payload (RFC 7296 Section 3.5).
type IDType uint8

// Identification types.
const (
	IDIPv4Addr   IDType = 1
	IDFQDN       IDType = 2
	IDRFC822Addr IDType = 3
	IDIPv6Addr   IDType = 5
	IDDERASN1DN  IDType = 9
	IDDERASN1GN  IDType = 10
	IDKeyID      IDType = 11
)

// AuthMethod is the Auth Method of an AUTH payload (RFC 7296 Section 3.8).
type AuthMethod uint8

// Authentication methods.
const (
	AuthRSASig           AuthMethod = 1
	AuthSharedKey        AuthMethod = 2
	AuthDSS              AuthMethod = 3
	AuthECDSA256         AuthMethod = 9
	AuthECDSA384         AuthMethod = 10
	AuthECDSA521         AuthMethod = 11
	AuthNULL             AuthMethod = 13 // RFC 7619
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

// HashAlgorithm is an RFC 7427 hash algorithm identifier, carried in the
// SIGNATURE_HASH_ALGORITHMS notify.
type HashAlgorithm uint16

// Hash algorithms (RFC 7427, RFC 8420).
const (
	HashSHA1     HashAlgorithm = 1
	HashSHA2256  HashAlgorithm = 2
	HashSHA2384  HashAlgorithm = 3
	HashSHA2512  HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5
)

// CertEncoding is the Cert Encoding of CERT and CERTREQ payloads
// (RFC 7296 Section 3.6).
type CertEncoding uint8

// Certificate encodings.
const (
	CertX509Signature CertEncoding = 4
	CertRawRSAKey     CertEncoding = 11
	CertHashURLX509   CertEncoding = 12
)

// TSType is a Traffic Selector type (RFC 7296 Section 3.13.1).
type TSType uint8

// Traffic selector types.
const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

// CFGType is the CFG Type of a Configuration payload (RFC 7296 Section 3.15).
type CFGType uint8

// Configuration payload types.
const (
	CFGRequest CFGType = 1
	CFGReply   CFGType = 2
	CFGSet     CFGType = 3
	CFGAck     CFGType = 4
)

// NotifyType is a Notify Message Type (RFC 7296 Section 3.10.1). Values below
// 16384 are errors, the rest status types.
type NotifyType uint16

// Error notify types.
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44
	NotifyStateNotFound              NotifyType = 47 // RFC 9370
)

// Status notify types.
const (
	NotifyInitialContact                NotifyType = 16384
	NotifySetWindowSize                 NotifyType = 16385
	NotifyAdditionalTSPossible          NotifyType = 16386
	NotifyIPCompSupported               NotifyType = 16387
	NotifyNATDetectionSourceIP          NotifyType = 16388
	NotifyNATDetectionDestinationIP     NotifyType = 16389
	NotifyCookie                        NotifyType = 16390
	NotifyUseTransportMode              NotifyType = 16391
	NotifyHTTPCertLookupSupported       NotifyType = 16392
	NotifyRekeySA                       NotifyType = 16393
	NotifyESPTFCPaddingNotSupported     NotifyType = 16394
	NotifyNonFirstFragmentsAlso         NotifyType = 16395
	NotifyMOBIKESupported               NotifyType = 16396
	NotifyIKEv2FragmentationSupported   NotifyType = 16430 // RFC 7383
	NotifySignatureHashAlgorithms       NotifyType = 16431 // RFC 7427
	NotifyUsePPK                        NotifyType = 16435 // RFC 8784
	NotifyPPKIdentity                   NotifyType = 16436
	NotifyNoPPKAuth                     NotifyType = 16437
	NotifyIntermediateExchangeSupported NotifyType = 16438 // RFC 9242
	NotifyIP4Allowed                    NotifyType = 16439
	NotifyIP6Allowed                    NotifyType = 16440
	NotifyAdditionalKeyExchange         NotifyType = 16441 // RFC 9370
	NotifyUseAggfrag                    NotifyType = 16442
	NotifySupportedAuthMethods          NotifyType = 16443
	NotifyUsePPKInt                     NotifyType = 16445 // RFC 9867
	NotifyPPKIdentityKey                NotifyType = 16446
)

// IsError reports whether n is an error notify type (RFC 7296 Section 3.10.1).
func (n NotifyType) IsError() bool { return n < 16384 }
