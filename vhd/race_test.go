//go:build race

package vhd

// raceEnabled lets slow randomised tests do fewer rounds under -race.
const raceEnabled = true
