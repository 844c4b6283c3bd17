package asynciotest

import (
	"os"
	"time"
)

// A broken writer or reader run as a child of the kit's own tests fails
// its rule by waiting in vain; a short limit keeps that quick.
func init() {
	if os.Getenv("POLLWS_KIT_BUG") != "" {
		waitLimit = 2 * time.Second
	}
}
