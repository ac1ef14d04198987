package interop

import (
	"testing"

	"github.com/pqlab/pqlab/ike"
)

func TestPqlabSmoke(t *testing.T) {
	s := newPqlabPair(t, interopSpec{Proposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16-x25519"})
	ctx := testContext(t)
	if _, err := s.D.Initiate(ctx, pqlabPeerName); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.D.WaitEvent(ctx, 0, func(ev ike.Event) bool { return ev.Kind == ike.EventChildSAInstalled || ev.Kind == ike.EventFailed }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", s.D.Events())
	sa := s.established(t, ctx)
	t.Logf("%+v", sa)
	s.pingBoth(t, ctx, 3, 56)
	s.transferBoth(t, ctx, 64<<10)
	t.Logf("%+v", s.D.Stats())
}
