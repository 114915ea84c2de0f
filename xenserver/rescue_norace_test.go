//go:build !race

package xenserver

// rescueSweepStride: without the race detector the rescue sweeps visit
// every call.
const rescueSweepStride = 1
