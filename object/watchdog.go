package object

import (
	"fmt"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/watchdog"
)

// explainStall wraps err, from a wait the watchdog w (the what budget)
// gave up on, with chunk.ErrStalled.
func explainStall(w *watchdog.Watchdog, what string, err error) error {
	if err != nil && w.Fired() {
		return fmt.Errorf("%w past the %s budget (%v): %w", chunk.ErrStalled, what, w.Budget(), err)
	}
	return err
}
