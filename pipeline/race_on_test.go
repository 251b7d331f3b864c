//go:build race

package pipeline

// raceEnabled: the race detector slows kafka-go's and kfake's byte loops by
// tens of times, so throughput tests shrink their volume.
const raceEnabled = true
