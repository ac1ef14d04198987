package wire

import (
	"errors"
	"fmt"
)

// ErrSyntax is matched (errors.Is) by every *SyntaxError. The engine answers
// such messages with INVALID_SYNTAX where RFC 7296 Section 2.21 allows an
// answer, and drops them otherwise.
var ErrSyntax = errors.New("wire: invalid syntax")

// SyntaxError reports a malformed header, payload or payload chain.
type SyntaxError struct {
	// Payload is the payload being parsed or encoded, PayloadNone for the
	// IKE header and the payload chain itself.
	Payload PayloadType
	// Reason says what was wrong.
	Reason string
}

func (e *SyntaxError) Error() string {
	if e.Payload == PayloadNone {
		return "wire: " + e.Reason
	}
	return "wire: " + e.Payload.String() + " payload: " + e.Reason
}

// Is makes errors.Is(err, ErrSyntax) true for every *SyntaxError.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

func errSyntax(p PayloadType, reason string) error {
	return &SyntaxError{Payload: p, Reason: reason}
}

func errSyntaxf(p PayloadType, format string, args ...any) error {
	return &SyntaxError{Payload: p, Reason: fmt.Sprintf(format, args...)}
}

// VersionError reports an IKE header whose major version is not 2. The rest
// of the header was parsed and is in Header (MinorVersion holds the received
// minor version), so the engine can answer INVALID_MAJOR_VERSION with the
// SPIs and Message ID of the request (RFC 7296 Section 2.5).
type VersionError struct {
	Major, Minor uint8
	Header       Header
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("wire: unsupported IKE version %d.%d", e.Major, e.Minor)
}

// UnsupportedCriticalPayloadError reports a payload of a type this codec does
// not know whose Critical bit is set. The engine rejects the whole message
// with UNSUPPORTED_CRITICAL_PAYLOAD carrying Type as its one-octet data
// (RFC 7296 Sections 2.5 and 3.2).
type UnsupportedCriticalPayloadError struct {
	Type PayloadType
}

func (e *UnsupportedCriticalPayloadError) Error() string {
	return fmt.Sprintf("wire: unsupported critical payload type %d", uint8(e.Type))
}
