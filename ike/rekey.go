package ike

import (
	"time"
)

// childExchange is the state of a CREATE_CHILD_SA exchange (and its
// IKE_FOLLOWUP_KE rounds) or of a Child SA delete.
type childExchange struct {
	old *childSA // the Child SA being rekeyed or deleted
}

func (x *childExchange) deleteReason() Cause { return CauseLocalDelete }

func (e *Engine) onChildResponse(now time.Time, sa *ikeSA, r *request, in *inbound) {}

func (e *Engine) onCreateChildRequest(now time.Time, sa *ikeSA, in *inbound) {
	e.respondError(now, sa, in, 35, nil)
}

func (e *Engine) onFollowupKERequest(now time.Time, sa *ikeSA, in *inbound) {
	e.respondError(now, sa, in, 47, nil)
}

func (e *Engine) afterPeerDelete(now time.Time, sa *ikeSA, gone []*childSA) {}

func (e *Engine) startIKERekey(now time.Time, sa *ikeSA) {}

func (e *Engine) startChildRekey(now time.Time, sa *ikeSA, c *childSA) {}
