package backoff

import (
	"testing"
	"time"
)

func TestNextGrowsAndCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"upper", 0.999999999, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"lower", 0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := Backoff{Base: time.Second, Max: 30 * time.Second, Rand: func() float64 { return tt.rand }}
			for i, want := range tt.want {
				got := b.Next().Round(time.Millisecond)
				if got != want {
					t.Errorf("attempt %d: got %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: 30 * time.Second, Rand: func() float64 { return 0 }}
	for range 5 {
		b.Next()
	}
	b.Reset()
	if got, want := b.Next(), 500*time.Millisecond; got != want {
		t.Errorf("after Reset: got %v, want %v", got, want)
	}
}

func TestJitterSpreads(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for range 50 {
		b := Backoff{Base: time.Second, Max: 30 * time.Second}
		b.Next()
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 jittered delays gave only %d distinct values", len(seen))
	}
}
