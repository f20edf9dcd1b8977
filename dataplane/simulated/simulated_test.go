package simulated_test

import (
	"testing"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/handlers/porttest"
)

func TestTheSimulatedProvisionerMeetsTheContract(t *testing.T) {
	porttest.Provisioner(t, simulated.New(simulated.Config{}), domaintest.Migration("m-sim", "127.0.0.1:19530"), nil)
}

func TestTheSimulatedDataPlaneMeetsTheContract(t *testing.T) {
	dp := simulated.New(simulated.Config{Collections: 3, RangesPerCollection: 4})
	steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
	m := domaintest.Migration("m-sim", "127.0.0.1:19530")
	porttest.DataPlane(t, steps, m.Source, domain.TargetProvisioned{ClusterID: "t-m-sim", Endpoint: "simulated://m-sim"}, nil)
}
