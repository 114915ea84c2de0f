package scheduler

import "math"

const (
	pickMaxCells = 32 // cells the picker follows
	pickMaxK     = 16 // hosts it keeps per cell
	pickMaxTop   = 64 // hosts it keeps overall
)

// picker keeps, while weigh computes the totals of a one-instance request,
// the best hosts overall (for the host_subset_size choice) and the best
// hosts of each cell (for the alternates), by weight and then position,
// so that the selection needs neither a sort nor another pass. Hosts
// arrive in position order, so a later host displaces a kept one only
// with a strictly larger weight; weigh tests that inline against the
// tails and calls in only to insert.
type picker struct {
	on    bool
	fed   bool // weigh offered every host
	top   int
	k     int
	gN    int
	gTail float64 // weight to beat to enter the overall list
	gID   [pickMaxTop]int32
	gW    [pickMaxTop]float64
	cN    [pickMaxCells]int
	cTail [pickMaxCells]float64
	cID   [pickMaxCells][pickMaxK]int32
	cW    [pickMaxCells][pickMaxK]float64
}

// reset prepares the picker, or leaves it off when the request does not
// fit its buffers.
func (pk *picker) reset(top, k, cells int) {
	pk.fed = false
	pk.on = top >= 1 && k >= 1 && top <= pickMaxTop && k <= pickMaxK && cells <= pickMaxCells
	if !pk.on {
		return
	}
	pk.top, pk.k, pk.gN = top, k, 0
	pk.gTail = math.Inf(-1)
	for c := 0; c < cells; c++ {
		pk.cN[c] = 0
		pk.cTail[c] = math.Inf(-1)
	}
}

// offer is called when w beats the overall tail or the cell's tail.
func (pk *picker) offer(id int32, w float64, c int32) {
	if w > pk.gTail {
		pk.gN = insert(pk.gID[:], pk.gW[:], pk.gN, pk.top, id, w)
		if pk.gN == pk.top {
			pk.gTail = pk.gW[pk.gN-1]
		}
	}
	if w > pk.cTail[c] {
		n := insert(pk.cID[c][:], pk.cW[c][:], pk.cN[c], pk.k, id, w)
		pk.cN[c] = n
		if n == pk.k {
			pk.cTail[c] = pk.cW[c][n-1]
		}
	}
}

// insert puts (id, w) into the sorted buffer of n entries (capacity max)
// after every entry of weight >= w, and returns the new length.
func insert(ids []int32, ws []float64, n, max int, id int32, w float64) int {
	j := n
	if n == max {
		j = n - 1
	}
	for j > 0 && w > ws[j-1] {
		ids[j], ws[j] = ids[j-1], ws[j-1]
		j--
	}
	ids[j], ws[j] = id, w
	if n < max {
		n++
	}
	return n
}
