// foo is the first service of the buck2 example. It prints the greeting shipped in its kodata
// (ko puts kodata/ at $KO_DATA_PATH, /var/run/ko in the image) and exits.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

func main() {
	dir := os.Getenv("KO_DATA_PATH")
	if dir == "" {
		fmt.Fprintln(os.Stderr, "foo: KO_DATA_PATH is not set (run me in the image, or set it to cmd/foo/kodata)")
		os.Exit(1)
	}
	greeting, err := os.ReadFile(filepath.Join(dir, "greeting.txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "foo: reading kodata:", err)
		os.Exit(1)
	}
	fmt.Printf("foo (%s/%s, env %s): %s\n", runtime.GOOS, runtime.GOARCH, os.Getenv("EXAMPLE_ENV"), strings.TrimSpace(string(greeting)))
}
