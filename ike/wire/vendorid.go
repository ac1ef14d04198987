package wire

// VendorID is the Vendor ID payload (RFC 7296 Section 3.12): an opaque
// constant, typically a hash of a vendor string.
type VendorID struct {
	Data []byte
}

// Type implements Payload.
func (p *VendorID) Type() PayloadType { return PayloadVendorID }

// Append implements Payload.
func (p *VendorID) Append(b []byte, next PayloadType) ([]byte, error) {
	b, start := beginPayload(b, next, false)
	b = append(b, p.Data...)
	return endPayload(b, start, PayloadVendorID)
}

// ParseVendorID parses a Vendor ID payload, generic header included, from
// the start of b and returns it with the octets consumed. Data aliases b.
func ParseVendorID(b []byte) (*VendorID, int, error) {
	body, n, err := payloadBody(b, PayloadVendorID)
	if err != nil {
		return nil, 0, err
	}
	return &VendorID{Data: orNil(body)}, n, nil
}
