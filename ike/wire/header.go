package wire

import (
	"encoding/binary"
	"math"
)

// Sizes of fixed structures (RFC 7296 Section 3, RFC 7383 Section 2.5).
const (
	// HeaderLen is the length of the IKE header (RFC 7296 Section 3.1).
	HeaderLen = 28
	// GenericHeaderLen is the length of the generic payload header
	// (RFC 7296 Section 3.2). Payload Length fields include it.
	GenericHeaderLen = 4
	// MaxPayloadLen is the largest Payload Length a generic header can carry.
	MaxPayloadLen = math.MaxUint16
	// SKFHeaderLen is the generic header plus the Fragment Number and Total
	// Fragments fields of the Encrypted Fragment payload (RFC 7383 Section 2.5).
	SKFHeaderLen = GenericHeaderLen + 4
	// SPILen is the length of an IKE SA SPI (RFC 7296 Section 3.1).
	SPILen = 8
)

// MajorVersion is the IKE major version this codec speaks (RFC 7296
// Section 3.1); it sends minor version 0 unless told otherwise.
const MajorVersion = 2

// Header is the IKE header (RFC 7296 Section 3.1).
//
// The SPIs are held as big-endian uint64 values: SPIi is the first eight
// octets of the message, SPIr the next eight.
type Header struct {
	SPIi, SPIr  uint64
	NextPayload PayloadType
	// MinorVersion is the received minor version. The major version of a
	// parsed header is always 2 (otherwise ParseHeader fails with
	// *VersionError); Append writes major 2 and this minor version.
	MinorVersion uint8
	Exchange     ExchangeType
	Flags        uint8
	MessageID    uint32
	// Length is the total message length in octets, header included.
	Length uint32
}

// IsInitiator reports whether the Initiator flag is set: the message was sent
// by the original initiator of the IKE SA.
func (h Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// IsResponse reports whether the Response flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// Append appends h as the 28-octet IKE header, with NextPayload and Length
// exactly as they are in h (AppendMessage computes both; suite uses this to
// build associated data and RFC 9242 "A" octets).
func (h Header) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), MajorVersion<<4|h.MinorVersion&0x0f, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// ParseHeader parses the IKE header at the start of b. It does not compare
// Length with len(b); ParseMessage does. A major version other than 2 gives a
// *VersionError holding the rest of the header (RFC 7296 Section 2.5).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, errSyntaxf(PayloadNone, "IKE header: %d octets, need %d", len(b), HeaderLen)
	}
	h := Header{
		SPIi:         binary.BigEndian.Uint64(b[0:8]),
		SPIr:         binary.BigEndian.Uint64(b[8:16]),
		NextPayload:  PayloadType(b[16]),
		MinorVersion: b[17] & 0x0f,
		Exchange:     ExchangeType(b[18]),
		Flags:        b[19],
		MessageID:    binary.BigEndian.Uint32(b[20:24]),
		Length:       binary.BigEndian.Uint32(b[24:28]),
	}
	if major := b[17] >> 4; major != MajorVersion {
		return h, &VersionError{Major: major, Minor: h.MinorVersion, Header: h}
	}
	if h.Length < HeaderLen {
		return h, errSyntaxf(PayloadNone, "IKE header: Length %d shorter than the header", h.Length)
	}
	return h, nil
}

// AppendSKHeaders appends the IKE header h, with Next Payload SK and Length
// HeaderLen+GenericHeaderLen+bodyLen, followed by the generic header of an
// SK payload whose Next Payload is first (the first inner payload) and whose
// body (IV, ciphertext, ICV) is bodyLen octets long. Critical and reserved
// bits are zero.
//
// For a message whose only payload is SK these are the octets before the IV:
// the AEAD associated data of RFC 5282 Section 5.1 and the start of the data
// the ICV covers (RFC 7296 Section 3.14). With bodyLen = len(P) they are the
// "A" octets of RFC 9242 Section 3.1 for plaintext inner payloads P, also for
// a message that was sent as SKF fragments.
func AppendSKHeaders(b []byte, h Header, first PayloadType, bodyLen int) ([]byte, error) {
	if bodyLen < 0 || bodyLen > MaxPayloadLen-GenericHeaderLen {
		return b, errSyntaxf(PayloadSK, "body of %d octets does not fit", bodyLen)
	}
	h.NextPayload = PayloadSK
	h.Length = uint32(HeaderLen + GenericHeaderLen + bodyLen)
	b = h.Append(b)
	return appendGenericHeader(b, first, false, GenericHeaderLen+bodyLen), nil
}

// AppendSKFHeaders appends the IKE header h, with Next Payload SKF and Length
// HeaderLen+SKFHeaderLen+bodyLen, followed by an Encrypted Fragment payload
// header: generic header (Next Payload first, which is the first inner payload
// type in fragment 1 and zero in the others), Fragment Number and Total
// Fragments. These 36 octets are the AEAD associated data of a fragment
// (RFC 7383 Section 2.5); bodyLen counts IV, ciphertext and ICV.
func AppendSKFHeaders(b []byte, h Header, first PayloadType, number, total uint16, bodyLen int) ([]byte, error) {
	if bodyLen < 0 || bodyLen > MaxPayloadLen-SKFHeaderLen {
		return b, errSyntaxf(PayloadSKF, "body of %d octets does not fit", bodyLen)
	}
	if err := checkFragmentNumbers(number, total); err != nil {
		return b, err
	}
	h.NextPayload = PayloadSKF
	h.Length = uint32(HeaderLen + SKFHeaderLen + bodyLen)
	b = h.Append(b)
	b = appendGenericHeader(b, first, false, SKFHeaderLen+bodyLen)
	b = binary.BigEndian.AppendUint16(b, number)
	return binary.BigEndian.AppendUint16(b, total), nil
}
