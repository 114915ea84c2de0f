//go:build race

package xenserver

// raceDetector is true when the tests run with -race, which makes the
// sweeps sample their fault points instead of visiting every one.
const raceDetector = true
