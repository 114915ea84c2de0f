//go:build !race

package vhd

const raceEnabled = false
