// Package backoff computes reconnect delays: exponential growth with full
// jitter and a cap, reset after a healthy session. There is one backoff type
// in the agent and every retry loop uses it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is not safe for concurrent use; each retry loop owns one.
type Backoff struct {
	// Base is the first delay's upper bound; Max caps every delay.
	Base, Max time.Duration
	// Rand returns a float in [0,1); nil uses math/rand/v2.
	Rand    func() float64
	attempt int
}

// Next returns the delay before the next attempt and counts the attempt.
// The delay is uniformly drawn from [d/2, d], where d doubles per attempt up
// to Max: half jitter keeps a lower bound so a storm of agents does not
// hammer a restarting controller, and spreads them out.
func (b *Backoff) Next() time.Duration {
	d := b.Base
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.attempt++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}

// Reset starts the sequence over; call it after a healthy session.
func (b *Backoff) Reset() { b.attempt = 0 }
