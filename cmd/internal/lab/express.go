package lab

import (
	"errors"

	"github.com/pqlab/pqlab/models"
	"github.com/pqlab/pqlab/sim/gateway"
)

// Expressible says why a device of peer model p cannot be configured with
// an IKE proposal, or nil if it can: an ML-KEM parameter set it does not
// implement, ML-KEM in IKE_SA_INIT without mlkem_in_init, an additional
// key exchange without IKE_INTERMEDIATE support, and anything else the
// engine configuration refuses.
func Expressible(p *models.Peer, proposal string) error {
	if err := gateway.CheckProposal(p, proposal, true); err != nil {
		if pe, ok := errors.AsType[*gateway.ProposalError](err); ok {
			return errors.New(pe.Short())
		}
		return err
	}
	return CheckProposal(p, proposal)
}
