//go:build race

package migrate_test

// raceDetector is true under -race, where the sweeps on the XenServer
// driver fail each method of an operation once instead of every call.
const raceDetector = true
