//go:build race

package load

// raceEnabled is true under the race detector, whose sync.Pool drops
// what is put in it now and then: allocation counts do not hold there.
const raceEnabled = true
