// bar is the buck2 example's second service: it shares foo's base image and has no kodata.
package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Printf("bar (%s/%s): ready\n", runtime.GOOS, runtime.GOARCH)
}
