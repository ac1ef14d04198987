package wire

// ID is an Identification payload, IDi or IDr (RFC 7296 Section 3.5).
type ID struct {
	// Responder selects IDr (36); false is IDi (35).
	Responder bool
	IDType    IDType
	// Reserved holds the three RESERVED octets as received. They are sent
	// as zero by this stack but are part of IDx', which AUTH covers
	// (RFC 7296 Section 2.15), so a received value is kept exactly.
	Reserved [3]byte
	Data     []byte
}

// idFixedLen is the ID Type and RESERVED fields.
const idFixedLen = 4

// Type implements Payload.
func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// AppendPrime appends IDx', the payload body without the generic header
// (ID Type, RESERVED, data), as signed by AUTH (RFC 7296 Section 2.15).
func (p *ID) AppendPrime(b []byte) []byte {
	b = append(b, byte(p.IDType), p.Reserved[0], p.Reserved[1], p.Reserved[2])
	return append(b, p.Data...)
}

// Prime returns IDx' in a new slice; see AppendPrime.
func (p *ID) Prime() []byte {
	return p.AppendPrime(make([]byte, 0, idFixedLen+len(p.Data)))
}

// Append implements Payload.
func (p *ID) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = p.AppendPrime(b)
	return endPayload(b, start, p.Type())
}

// ParseIDi parses an IDi payload, generic header included, from the start of
// b and returns it with the octets consumed. Data aliases b.
func ParseIDi(b []byte) (*ID, int, error) { return parseID(b, PayloadIDi) }

// ParseIDr is ParseIDi for IDr.
func ParseIDr(b []byte) (*ID, int, error) { return parseID(b, PayloadIDr) }

func parseID(b []byte, t PayloadType) (*ID, int, error) {
	body, n, err := payloadBody(b, t)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < idFixedLen {
		return nil, 0, errSyntaxf(t, "body of %d octets", len(body))
	}
	return &ID{
		Responder: t == PayloadIDr,
		IDType:    IDType(body[0]),
		Reserved:  [3]byte(body[1:4]),
		Data:      orNil(body[idFixedLen:]),
	}, n, nil
}
