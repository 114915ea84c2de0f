package migrate

import (
	sm "github.com/xenflow/xenflow/statemachine"
)

// machines are the flow machines the orchestrator checks its steps
// against: statemachine's tables, which hold Nova's rows and the ones
// xenflow adds (the rollback to an intact source, the confirm and revert
// failures that keep VERIFY_RESIZE).
type machines map[sm.FlowName]*sm.FlowMachine

func buildMachines() machines {
	ms := machines{}
	for _, name := range []sm.FlowName{sm.FlowResize, sm.FlowMigrate, sm.FlowResizeDown,
		sm.FlowConfirm, sm.FlowRevert, sm.FlowAutoConfirm} {
		ms[name] = sm.LookupFlow(name).Machine()
	}
	return ms
}
