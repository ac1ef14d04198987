package lab

import (
	"fmt"
	"slices"

	"github.com/pqlab/pqlab/ike/suite"
	"github.com/pqlab/pqlab/ike/wire"
	"github.com/pqlab/pqlab/models"
)

// Expressible says why a device of peer model p cannot be configured with
// an IKE proposal, or nil if it can: an ML-KEM parameter set it does not
// implement, ML-KEM in IKE_SA_INIT without mlkem_in_init, an additional
// key exchange without IKE_INTERMEDIATE support, and anything else the
// engine configuration refuses.
func Expressible(p *models.Peer, proposal string) error {
	props, err := suite.ParseProposals(wire.ProtocolIKE, proposal)
	if err != nil {
		return err
	}
	for _, pr := range props {
		for _, id := range pr.KE {
			if m := mlkemName(id); m != "" {
				if !slices.Contains(p.IKE.MLKEM, m) {
					return fmt.Errorf("implements no %s", m)
				}
				if !p.IKE.MLKEMInInit {
					return fmt.Errorf("cannot put %s in IKE_SA_INIT (mlkem_in_init = false)", m)
				}
			}
		}
		for _, round := range pr.AddKE {
			for _, id := range round {
				if id == 0 {
					continue
				}
				if !p.IKE.Intermediate {
					return fmt.Errorf("has no additional key exchanges (no IKE_INTERMEDIATE)")
				}
				if m := mlkemName(id); m != "" && !slices.Contains(p.IKE.MLKEM, m) {
					return fmt.Errorf("implements no %s", m)
				}
			}
		}
	}
	if err := CheckProposal(p, proposal); err != nil {
		return err
	}
	return nil
}

func mlkemName(id uint16) string {
	switch id {
	case wire.KEMLKEM512:
		return "mlkem512"
	case wire.KEMLKEM768:
		return "mlkem768"
	case wire.KEMLKEM1024:
		return "mlkem1024"
	}
	return ""
}
