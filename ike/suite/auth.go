package suite

import (
	"encoding/binary"
	"fmt"

	"github.com/pqlab/pqlab/ike/wire"
)

// Sizes of the headers IntAuthData rebuilds.
const (
	ikeHeaderSize     = 28 // RFC 7296 Section 3.1
	genericHeaderSize = 4  // RFC 7296 Section 3.2
	ikeNextPayloadOff = 16
	ikeLengthOff      = 24
)

// pskKeyPad is the constant of the shared-key AUTH (RFC 7296 Section 2.15).
const pskKeyPad = "Key Pad for IKEv2"

// IntAuthData returns the A | P octets of an IKE_INTERMEDIATE message for
// IntAuth (RFC 9242 Section 3.1), built as if the message had not been
// fragmented: ikeHeader (its first 28 octets are used) with Next Payload set
// to SK (46) and Length set to the length of A | P, then an SK generic
// header whose Next Payload is firstPayload, with flags 0 and Payload Length
// 4 + len(inner), then the plaintext inner payloads.
func IntAuthData(ikeHeader []byte, firstPayload wire.PayloadType, inner []byte) ([]byte, error) {
	if len(ikeHeader) < ikeHeaderSize {
		return nil, fmt.Errorf("suite: IKE header is %d octets, want %d", len(ikeHeader), ikeHeaderSize)
	}
	n := ikeHeaderSize + genericHeaderSize + len(inner)
	if genericHeaderSize+len(inner) > 0xffff {
		return nil, fmt.Errorf("suite: IKE_INTERMEDIATE inner payloads too long (%d octets)", len(inner))
	}
	out := make([]byte, 0, n)
	out = append(out, ikeHeader[:ikeHeaderSize]...)
	out[ikeNextPayloadOff] = byte(wire.PayloadSK)
	binary.BigEndian.PutUint32(out[ikeLengthOff:], uint32(n))
	out = append(out, byte(firstPayload), 0)
	out = binary.BigEndian.AppendUint16(out, uint16(genericHeaderSize+len(inner)))
	return append(out, inner...), nil
}

// IntAuth returns the next value of one side's IntAuth chain (RFC 9242
// Section 3.1):
//
//	IntAuth_x(n) = prf(SK_px(n-1), IntAuth_x(n-1) | A | P)
//
// where skp is SK_pi (initiator's messages) or SK_pr (responder's) of the
// keys that protected the message, prev is empty for the first
// IKE_INTERMEDIATE and data is IntAuthData of the message.
func IntAuth(prf *PRF, skp, prev, data []byte) []byte {
	return prf.Sum(skp, prev, data)
}

// IntAuthOctets returns IntAuth_iN | IntAuth_rN | IKE_AUTH message ID, the
// octets appended to both sides' signed octets when IKE_INTERMEDIATE
// exchanges took place (RFC 9242 Section 3.1). Without IKE_INTERMEDIATE
// exchanges nothing is appended: pass nil to SignedOctets instead.
func IntAuthOctets(intAuthI, intAuthR []byte, authMessageID uint32) []byte {
	return binary.BigEndian.AppendUint32(concat(intAuthI, intAuthR), authMessageID)
}

// SignedOctets returns the octets that AUTH covers (RFC 7296 Section 2.15,
// RFC 9242 Section 3.1):
//
//	RealMessage | NonceData | prf(SK_px, IDx') [| IntAuth]
//
// For the initiator realMessage is its IKE_SA_INIT request, peerNonce the
// responder's nonce data, skp SK_pi and idBody the body of its IDi payload
// (ID type, three reserved octets, data); for the responder its IKE_SA_INIT
// response, the initiator's nonce, SK_pr and IDr. intAuth is IntAuthOctets or
// nil.
func SignedOctets(prf *PRF, realMessage, peerNonce, skp, idBody, intAuth []byte) []byte {
	return concat(realMessage, peerNonce, prf.Sum(skp, idBody), intAuth)
}

// PSKAuth returns the Authentication Data of a shared-key AUTH payload
// (method 2, RFC 7296 Section 2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
func PSKAuth(prf *PRF, psk, signedOctets []byte) []byte {
	return prf.Sum(prf.Sum(psk, []byte(pskKeyPad)), signedOctets)
}
