package compute_test

import (
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	computetest.TestStore(t, func(_ *testing.T, now func() time.Time) compute.Store {
		return compute.NewMemoryStore(compute.WithStoreClock(now))
	})
}
