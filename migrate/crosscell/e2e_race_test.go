//go:build race

package crosscell_test

// raceDetector is true under -race, where the XenAPI sweep is sampled
// (see sampled).
const raceDetector = true
