package suite

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/pqlab/pqlab/ike/wire"
)

// integAlg is an integrity transform (Transform Type 3): an HMAC truncated
// to icvSize octets (RFC 2404, RFC 4868 Section 2.1).
type integAlg struct {
	id      uint16
	name    string
	hash    func() hash.Hash
	keySize int
	icvSize int
}

var integTable = []*integAlg{
	{wire.IntegHMACSHA196, "sha1", sha1.New, 20, 12},
	{wire.IntegHMACSHA2256128, "sha256", sha256.New, 32, 16},
	{wire.IntegHMACSHA2384192, "sha384", sha512.New384, 48, 24},
	{wire.IntegHMACSHA2512256, "sha512", sha512.New, 64, 32},
}

func integByID(id uint16) (*integAlg, error) {
	for _, a := range integTable {
		if a.id == id {
			return a, nil
		}
	}
	return nil, fmt.Errorf("suite: unsupported integrity transform %d", id)
}

// IntegKeySize returns the key length in octets of an integrity transform:
// the hash output size for the HMAC transforms (RFC 4868 Section 2.1.1,
// RFC 2404). IntegNone has a zero-length key.
func IntegKeySize(id uint16) (int, error) {
	if id == wire.IntegNone {
		return 0, nil
	}
	a, err := integByID(id)
	if err != nil {
		return 0, err
	}
	return a.keySize, nil
}

// IntegICVSize returns the truncated output (ICV) length in octets of an
// integrity transform (RFC 4868 Section 2.1.2).
func IntegICVSize(id uint16) (int, error) {
	if id == wire.IntegNone {
		return 0, nil
	}
	a, err := integByID(id)
	if err != nil {
		return 0, err
	}
	return a.icvSize, nil
}

// mac returns the truncated HMAC of the concatenated data.
func (a *integAlg) mac(key []byte, data ...[]byte) []byte {
	m := hmac.New(a.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)[:a.icvSize]
}
