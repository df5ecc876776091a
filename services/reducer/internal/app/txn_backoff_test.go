package app

import (
	"testing"
	"time"
)

// The transactional retry starts in milliseconds (a CONCURRENT_TRANSACTIONS
// answer clears as soon as the previous commit's markers are written) and
// never waits more than sarama's default.
func TestTxnBackoff(t *testing.T) {
	prev := time.Duration(0)
	for retries, want := range []time.Duration{5, 10, 20, 40, 80, 100, 100, 100} {
		got := txnBackoff(retries, 50)
		if got != want*time.Millisecond {
			t.Errorf("retry %d waits %s, want %s", retries, got, want*time.Millisecond)
		}
		if got < prev {
			t.Errorf("retry %d waits %s, less than the retry before (%s)", retries, got, prev)
		}
		prev = got
	}
	if got := txnBackoff(1000, 50); got != 100*time.Millisecond {
		t.Errorf("retry 1000 waits %s", got)
	}
}
