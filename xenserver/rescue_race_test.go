//go:build race

package xenserver

// rescueSweepStride: under the race detector every call is many times
// slower, so the rescue sweeps visit every fourth call (the full sweeps
// run without -race).
const rescueSweepStride = 4
