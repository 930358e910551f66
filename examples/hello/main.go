// hello is the example service rules_ko's README builds into an image: it prints a
// greeting read from its kodata, as a ko-built service would.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := os.Getenv("KO_DATA_PATH")
	greeting, err := os.ReadFile(filepath.Join(dir, "greeting.txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading kodata:", err)
		os.Exit(1)
	}
	exe, _ := os.Executable()
	fmt.Printf("%s (running %s as uid %d)\n", strings.TrimSpace(string(greeting)), exe, os.Getuid())
}
