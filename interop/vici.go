package interop

// A minimal client of strongSwan's Versatile IKE Control Interface (vici): the transport framing,
// packet types and message encoding of src/libcharon/plugins/vici/README.md in the strongSwan
// sources, enough to initiate, terminate, rekey and list SAs and to read events.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// vici packet types.
const (
	viciCmdRequest      = 0
	viciCmdResponse     = 1
	viciCmdUnknown      = 2
	viciEventRegister   = 3
	viciEventUnregister = 4
	viciEventConfirm    = 5
	viciEventUnknown    = 6
	viciEvent           = 7
)

// vici message element types.
const (
	viciSectionStart = 1
	viciSectionEnd   = 2
	viciKeyValue     = 3
	viciListStart    = 4
	viciListItem     = 5
	viciListEnd      = 6
)

// vici limits: the transport's segment limit and a nesting bound for decoding.
const (
	viciMaxSegment = 512 * 1024
	viciMaxDepth   = 32
	viciMaxName    = 255
	viciMaxValue   = 65535
)

// ViciMessage is a vici message: ordered keys, each holding a string, a []string (list) or a
// *ViciMessage (section).
type ViciMessage struct {
	keys []string
	vals map[string]any
}

// NewViciMessage returns an empty message.
func NewViciMessage() *ViciMessage { return &ViciMessage{vals: map[string]any{}} }

// Set sets key to v (string, []string or *ViciMessage) and returns m for chaining.
func (m *ViciMessage) Set(key string, v any) *ViciMessage {
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.vals[key] = v
	return m
}

// Keys returns the keys in message order.
func (m *ViciMessage) Keys() []string { return m.keys }

// Str returns key's string value or "".
func (m *ViciMessage) Str(key string) string {
	s, _ := m.vals[key].(string)
	return s
}

// List returns key's list value or nil.
func (m *ViciMessage) List(key string) []string {
	l, _ := m.vals[key].([]string)
	return l
}

// Section returns key's section or nil.
func (m *ViciMessage) Section(key string) *ViciMessage {
	s, _ := m.vals[key].(*ViciMessage)
	return s
}

// String renders the message in swanctl's --raw style, for logs.
func (m *ViciMessage) String() string {
	var b strings.Builder
	m.render(&b)
	return b.String()
}

func (m *ViciMessage) render(b *strings.Builder) {
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch v := m.vals[k].(type) {
		case string:
			fmt.Fprintf(b, "%s=%s", k, v)
		case []string:
			fmt.Fprintf(b, "%s=[%s]", k, strings.Join(v, " "))
		case *ViciMessage:
			b.WriteString(k + " ")
			v.render(b)
		}
	}
	b.WriteByte('}')
}

func (m *ViciMessage) encode(b []byte) ([]byte, error) {
	for _, k := range m.keys {
		if len(k) == 0 || len(k) > viciMaxName {
			return nil, fmt.Errorf("interop: vici name of %d bytes", len(k))
		}
		switch v := m.vals[k].(type) {
		case string:
			if len(v) > viciMaxValue {
				return nil, fmt.Errorf("interop: vici value of %d bytes", len(v))
			}
			b = append(b, viciKeyValue, byte(len(k)))
			b = append(b, k...)
			b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		case []string:
			b = append(b, viciListStart, byte(len(k)))
			b = append(b, k...)
			for _, it := range v {
				if len(it) > viciMaxValue {
					return nil, fmt.Errorf("interop: vici list item of %d bytes", len(it))
				}
				b = append(b, viciListItem)
				b = binary.BigEndian.AppendUint16(b, uint16(len(it)))
				b = append(b, it...)
			}
			b = append(b, viciListEnd)
		case *ViciMessage:
			b = append(b, viciSectionStart, byte(len(k)))
			b = append(b, k...)
			var err error
			if b, err = v.encode(b); err != nil {
				return nil, err
			}
			b = append(b, viciSectionEnd)
		default:
			return nil, fmt.Errorf("interop: vici value of type %T", v)
		}
	}
	return b, nil
}

// decodeViciMessage parses a complete vici message. It never panics and bounds nesting.
func decodeViciMessage(b []byte) (*ViciMessage, error) {
	d := viciDecoder{b: b}
	m, err := d.section(0)
	if err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, errors.New("interop: vici section end without start")
	}
	return m, nil
}

type viciDecoder struct{ b []byte }

func (d *viciDecoder) byte() (byte, error) {
	if len(d.b) < 1 {
		return 0, io.ErrUnexpectedEOF
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

func (d *viciDecoder) name() (string, error) {
	n, err := d.byte()
	if err != nil || len(d.b) < int(n) {
		return "", errors.New("interop: vici name truncated")
	}
	if n == 0 {
		return "", errors.New("interop: empty vici name")
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s, nil
}

func (d *viciDecoder) value() (string, error) {
	if len(d.b) < 2 {
		return "", errors.New("interop: vici value truncated")
	}
	n := int(binary.BigEndian.Uint16(d.b))
	if len(d.b) < 2+n {
		return "", errors.New("interop: vici value truncated")
	}
	s := string(d.b[2 : 2+n])
	d.b = d.b[2+n:]
	return s, nil
}

// section decodes elements until a section end (depth > 0) or the end of input (depth 0).
func (d *viciDecoder) section(depth int) (*ViciMessage, error) {
	if depth > viciMaxDepth {
		return nil, errors.New("interop: vici message nested too deep")
	}
	m := NewViciMessage()
	for len(d.b) > 0 {
		t, _ := d.byte()
		switch t {
		case viciSectionEnd:
			if depth == 0 {
				return nil, errors.New("interop: vici section end without start")
			}
			return m, nil
		case viciSectionStart:
			k, err := d.name()
			if err != nil {
				return nil, err
			}
			s, err := d.section(depth + 1)
			if err != nil {
				return nil, err
			}
			m.Set(k, s)
		case viciKeyValue:
			k, err := d.name()
			if err != nil {
				return nil, err
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			m.Set(k, v)
		case viciListStart:
			k, err := d.name()
			if err != nil {
				return nil, err
			}
			var l []string
			for {
				it, err := d.byte()
				if err != nil {
					return nil, errors.New("interop: vici list truncated")
				}
				if it == viciListEnd {
					break
				}
				if it != viciListItem {
					return nil, fmt.Errorf("interop: vici element %d inside a list", it)
				}
				v, err := d.value()
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			m.Set(k, l)
		default:
			return nil, fmt.Errorf("interop: unknown vici element %d", t)
		}
	}
	if depth > 0 {
		return nil, errors.New("interop: vici section truncated")
	}
	return m, nil
}

// Vici is a connection to a charon's vici socket. It is not safe for concurrent use; open one per
// goroutine.
type Vici struct {
	conn net.Conn
}

// DialVici connects to the vici UNIX socket at path.
func DialVici(ctx context.Context, path string) (*Vici, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("interop: vici: %w", err)
	}
	return &Vici{conn: c}, nil
}

// Close closes the connection.
func (v *Vici) Close() error { return v.conn.Close() }

func (v *Vici) send(typ byte, name string, msg *ViciMessage) error {
	b := make([]byte, 4, 64)
	b = append(b, typ)
	if name != "" {
		b = append(b, byte(len(name)))
		b = append(b, name...)
	}
	if msg != nil {
		var err error
		if b, err = msg.encode(b); err != nil {
			return err
		}
	}
	if len(b)-4 > viciMaxSegment {
		return errors.New("interop: vici request too large")
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := v.conn.Write(b); err != nil {
		return fmt.Errorf("interop: vici write: %w", err)
	}
	return nil
}

// recv reads one packet: its type, its name (named types only) and its message.
func (v *Vici) recv() (byte, string, *ViciMessage, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(v.conn, hdr[:]); err != nil {
		return 0, "", nil, fmt.Errorf("interop: vici read: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > viciMaxSegment {
		return 0, "", nil, fmt.Errorf("interop: vici segment of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(v.conn, b); err != nil {
		return 0, "", nil, fmt.Errorf("interop: vici read: %w", err)
	}
	typ, b := b[0], b[1:]
	var name string
	if typ == viciCmdRequest || typ == viciEventRegister || typ == viciEventUnregister || typ == viciEvent {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return 0, "", nil, errors.New("interop: vici packet name truncated")
		}
		name, b = string(b[1:1+b[0]]), b[1+b[0]:]
	}
	msg, err := decodeViciMessage(b)
	return typ, name, msg, err
}

func (v *Vici) deadline(ctx context.Context) func() {
	if d, ok := ctx.Deadline(); ok {
		v.conn.SetDeadline(d)
	} else {
		v.conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { v.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// Call sends command cmd with request req (nil for none) and returns the response. Events that
// the command streams (see Stream) are discarded.
func (v *Vici) Call(ctx context.Context, cmd string, req *ViciMessage) (*ViciMessage, error) {
	return v.Stream(ctx, cmd, "", req, nil)
}

// Stream registers for event (when not empty), sends command cmd, hands every event of that name
// to fn until the response arrives, unregisters and returns the response. This is how vici
// returns lists ("list-sas" streams "list-sa" events) and logs ("initiate" streams "control-log").
func (v *Vici) Stream(ctx context.Context, cmd, event string, req *ViciMessage, fn func(*ViciMessage)) (*ViciMessage, error) {
	defer v.deadline(ctx)()
	if event != "" {
		if err := v.register(viciEventRegister, event); err != nil {
			return nil, err
		}
	}
	if err := v.send(viciCmdRequest, cmd, req); err != nil {
		return nil, err
	}
	var resp *ViciMessage
	for resp == nil {
		typ, name, msg, err := v.recv()
		if err != nil {
			return nil, err
		}
		switch typ {
		case viciCmdResponse:
			resp = msg
		case viciCmdUnknown:
			return nil, fmt.Errorf("interop: vici command %q unknown", cmd)
		case viciEvent:
			if name == event && fn != nil {
				fn(msg)
			}
		default:
			return nil, fmt.Errorf("interop: unexpected vici packet type %d", typ)
		}
	}
	if event != "" {
		if err := v.register(viciEventUnregister, event); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (v *Vici) register(typ byte, event string) error {
	if err := v.send(typ, event, nil); err != nil {
		return err
	}
	for {
		t, _, _, err := v.recv()
		if err != nil {
			return err
		}
		switch t {
		case viciEventConfirm:
			return nil
		case viciEventUnknown:
			return fmt.Errorf("interop: vici event %q unknown", event)
		case viciEvent:
			// An event registered earlier on this connection; ignore it.
		default:
			return fmt.Errorf("interop: unexpected vici packet type %d", t)
		}
	}
}

// viciOK turns a command response with "success" and "errmsg" into an error.
func viciOK(cmd string, resp *ViciMessage) error {
	if resp.Str("success") == "yes" {
		return nil
	}
	return fmt.Errorf("interop: vici %s failed: %s", cmd, resp.Str("errmsg"))
}
