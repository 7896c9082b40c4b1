// Command build builds moor's test images outside of `go test`, for
// `make testimage`: go run ./testdata/images/build [-force]
//
// It builds moor-testapp:latest exactly as internal/testenv.TestImage does,
// and does nothing when the image is already built from the current sources.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

func main() {
	force := flag.Bool("force", false, "rebuild even when the image is up to date")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	start := time.Now()
	built, err := testenv.BuildTestImage(ctx, *force)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	if built {
		fmt.Printf("built %s in %s\n", testenv.TestImageName, time.Since(start).Round(time.Millisecond))
	} else {
		fmt.Printf("%s is up to date\n", testenv.TestImageName)
	}
}
