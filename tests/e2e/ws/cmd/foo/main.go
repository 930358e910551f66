// foo prints its kodata greeting and its environment: the e2e tests run its image.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

func main() {
	data, err := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "greeting.txt"))
	if err != nil {
		fmt.Println("foo: no kodata:", err)
		os.Exit(1)
	}
	fmt.Printf("foo %s/%s says %s (style %s)\n", runtime.GOOS, runtime.GOARCH, string(data), os.Getenv("GREETING_STYLE"))
}
