//go:build !race

package migrate_test

// raceDetector is true under -race, where the sweeps on the XenServer
// driver are sampled (see sampled).
const raceDetector = false
