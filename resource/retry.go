package resource

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// retryDelays are the waits of a loop that retries until it succeeds (the
// key ring's first load, the revocation feed's reconnection): from first,
// doubling up to max, each randomised by ±50% so that replicas that lost
// the same database at the same moment do not all come back in step. It
// never gives up; Reset starts again from first after a success.
func retryDelays(first, max time.Duration) *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(first),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(max),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
}
